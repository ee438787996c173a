#!/usr/bin/env python3
"""unit_parse_json: every line `dmarcpipe parse` prints is valid JSON.

Crafts reports whose text needs escaping (quotes, backslashes, tabs and
newlines from character references, non-ASCII from UTF-8 and windows-1252
sources), runs `dmarcpipe parse` over them, and checks that each output line
loads with Python's strict json module and carries the values back intact.
Then quarantines a broken input and checks that NAME.reason loads as well.

usage: check_parse_json.py PATH/TO/dmarcpipe
"""
import gzip
import json
import os
import subprocess
import sys
import tempfile

ORG = 'Org "Q" \\ back\tslash\nnewline é € 😀'
# The same text as XML character data (tab and newline as references so
# XML end-of-line and attribute normalisation leave them alone).
ORG_XML = ('Org &quot;Q&quot; \\ back&#9;slash&#10;newline é € &#x1F600;')


def report(org_xml, report_id, records, encoding='UTF-8'):
    recs = ''.join(
        '<record><row><source_ip>%s</source_ip><count>%d</count>'
        '<policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf>'
        '<reason><type>other</type><comment>c:\\path "x"</comment></reason></policy_evaluated></row>'
        '<identifiers><header_from>example.com</header_from></identifiers>'
        '<auth_results><dkim><domain>example.com</domain><result>pass</result>'
        '<human_result>&lt;ok&gt;</human_result></dkim>'
        '<spf><domain>example.com</domain><result>fail</result></spf></auth_results></record>\n'
        % (ip, count) for ip, count in records)
    return ('<?xml version="1.0" encoding="%s"?>\n<feedback><version>1.0</version>'
            '<report_metadata><org_name>%s</org_name><email>a@example.org</email>'
            '<report_id>%s</report_id><date_range><begin>1700000000</begin>'
            '<end>1700086399</end></date_range><error>err "1"</error></report_metadata>'
            '<policy_published><domain>example.com</domain><p>none</p></policy_published>'
            '%s</feedback>\n' % (encoding, org_xml, report_id, recs))


def fail(msg):
    print('FAIL: ' + msg)
    sys.exit(1)


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    exe = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        good = os.path.join(tmp, 'good')
        os.mkdir(good)
        with open(os.path.join(good, 'a.xml'), 'w', encoding='utf-8') as f:
            f.write(report(ORG_XML, 'a-1', [('192.0.2.1', 1), ('2001:DB8::1', 2)]))
        with open(os.path.join(good, 'b.xml.gz'), 'wb') as f:
            f.write(gzip.compress(report(ORG_XML, 'b-1', [('192.0.2.3', 3)]).encode('utf-8')))
        with open(os.path.join(good, 'c.xml'), 'wb') as f:
            f.write(report('Caf\xe9 \u20ac', 'c-1', [('192.0.2.4', 4)],
                           encoding='windows-1252').encode('cp1252'))

        out = subprocess.run([exe, 'parse', good], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if out.returncode != 0:
            fail('parse exited %d: %s' % (out.returncode, out.stderr.decode(errors='replace')))
        lines = out.stdout.split(b'\n')
        if lines[-1] != b'':
            fail('output does not end with a newline')
        lines = lines[:-1]
        if len(lines) != 4:
            fail('expected 4 lines, got %d' % len(lines))
        objs = []
        for i, line in enumerate(lines):
            try:
                # strict: control characters in strings are errors
                objs.append(json.loads(line.decode('utf-8'), strict=True))
            except (UnicodeDecodeError, ValueError) as e:
                fail('line %d is not valid JSON (%s): %r' % (i + 1, e, line[:200]))
        by_id = {}
        for o in objs:
            by_id.setdefault(o['report_id'], []).append(o)
        if sorted(by_id) != ['a-1', 'b-1', 'c-1']:
            fail('report ids: %r' % sorted(by_id))
        for rid in ('a-1', 'b-1'):
            for o in by_id[rid]:
                if o['org_name'] != ORG:
                    fail('%s org_name %r != %r' % (rid, o['org_name'], ORG))
        a = by_id['a-1']
        if [o['source_ip'] for o in a] != ['192.0.2.1', '2001:db8::1'] or [o['count'] for o in a] != [1, 2]:
            fail('a-1 records: %r' % [(o['source_ip'], o['count']) for o in a])
        if by_id['c-1'][0]['org_name'] != 'Caf\xe9 \u20ac':
            fail('windows-1252 org_name: %r' % by_id['c-1'][0]['org_name'])
        o = a[0]
        checks = {
            'errors': ['err "1"'],
            'overrides': [{'type': 'other', 'comment': 'c:\\path "x"'}],
            'envelope_from': None,
            'policy_sp': None,
            'begin': 1700000000,
            'schema': 'rfc7489',
        }
        for k, v in checks.items():
            if o.get(k) != v:
                fail('%s: %r != %r' % (k, o.get(k), v))
        if o['dkim_results'][0]['human_result'] != '<ok>':
            fail('human_result: %r' % o['dkim_results'][0])

        # --summary lines are JSON too
        out = subprocess.run([exe, 'parse', '--summary', good], stdout=subprocess.PIPE)
        summ = [json.loads(l) for l in out.stdout.decode().splitlines()]
        if sum(s['records'] for s in summ) != 4 or sum(s['messages'] for s in summ) != 10:
            fail('summary: %r' % summ)

        # a rejected input: quarantined with a loadable reason
        bad = os.path.join(tmp, 'bad')
        os.mkdir(bad)
        data = gzip.compress(report(ORG_XML, 'x', [('192.0.2.1', 1)] * 50).encode())
        with open(os.path.join(bad, 'cut "q".xml.gz'), 'wb') as f:
            f.write(data[:len(data) // 2])
        qdir = os.path.join(tmp, 'q')
        out = subprocess.run([exe, 'parse', '--quarantine', qdir, bad],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if out.returncode != 1:
            fail('bad input: exit %d' % out.returncode)
        if out.stdout:
            fail('a rejected report printed records: %r' % out.stdout[:200])
        with open(os.path.join(qdir, 'cut "q".xml.gz.reason'), encoding='utf-8') as f:
            reason = json.load(f)
        if reason['stage'] != 'unwrap' or not reason['errors'] or reason['errors'][0]['stage'] != 'unwrap':
            fail('reason: %r' % reason)
        with open(os.path.join(qdir, 'cut "q".xml.gz'), 'rb') as f:
            if f.read() != data[:len(data) // 2]:
                fail('quarantined copy differs')
    print('ok')
    return 0


if __name__ == '__main__':
    sys.exit(main())
