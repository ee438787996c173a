# Writes the bytes of IN as a NUL-terminated C array named SYMBOL into OUT:
#   cmake -DIN=file -DOUT=file.c -DSYMBOL=name -P embed_text.cmake
# An array of numbers rather than a string literal: no escaping to get
# wrong, and no limit on a literal's length.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n    " body "${body}")
get_filename_component(name ${IN} NAME)
file(WRITE ${OUT}.tmp "/* Generated from ${name} by embed_text.cmake at build time: do not edit. */\n#include \"senders.h\"\n\nconst char ${SYMBOL}[] = {\n    ${body}0x00};\n")
file(RENAME ${OUT}.tmp ${OUT})
