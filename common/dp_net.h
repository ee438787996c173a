/* dp_net — IP addresses as text. */
#ifndef DP_NET_H
#define DP_NET_H

/* Writes the canonical text of an address (dotted quad for IPv4, RFC 5952
 * for IPv6) into out[46].  bytes: 4 (IPv4) or 16 bytes, network order. */
void dp_net_format_ip(const unsigned char *bytes, int family, char *out);

#endif
