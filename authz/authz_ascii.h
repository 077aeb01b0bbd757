/* authz_ascii: locale-independent character classes for the parsers
 * (<ctype.h> depends on the locale and takes int). */
#ifndef AUTHZ_ASCII_H
#define AUTHZ_ASCII_H

#include <stdbool.h>

/* True for '0'..'9'. */
static inline bool authz_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* The value of a hexadecimal digit (either case), or -1. */
static inline int authz_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
