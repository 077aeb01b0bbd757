#include <criterion/criterion.h>
#include <string.h>

#include "authz_cidr.h"

static authz_ip ip(const char *text)
{
    authz_ip out;
    cr_assert_eq(authz_ip_parse(authz_slice_from_cstr(text), &out), 0, "%s should parse", text);
    return out;
}

static authz_cidr cidr(const char *text)
{
    authz_cidr out;
    cr_assert_eq(authz_cidr_parse(authz_slice_from_cstr(text), &out), 0, "%s should parse", text);
    return out;
}

static void expect_format(const char *in, const char *want)
{
    authz_ip a = ip(in);
    char buf[46];
    cr_assert_str_eq(authz_ip_format(&a, buf, sizeof buf), want, "%s", in);
}

Test(cidr, ipv4)
{
    authz_ip a = ip("10.1.2.255");
    cr_assert_eq(a.family, 4);
    uint8_t want[4] = {10, 1, 2, 255};
    cr_assert_arr_eq(a.bytes, want, 4);
    ip("0.0.0.0");
    ip("255.255.255.255");
}

Test(cidr, ipv4_bad_forms)
{
    const char *bad[] = {"01.2.3.4",  "1.2.3.04",   "1.2.3",    "1.2.3.4.5", "256.1.1.1", "1.2.3.256",
                         "1..2.3",    ".1.2.3",     "1.2.3.4.", "1.2.3.4 ",  " 1.2.3.4",  "a.b.c.d",
                         "1.2.3.0x1", "1234.1.1.1", "1.2.3.-1", "",          "00.1.2.3",  "1.2.3.4/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        authz_ip out;
        cr_assert_eq(authz_ip_parse(authz_slice_from_cstr(bad[i]), &out), -1, "[%s] should fail", bad[i]);
    }
    authz_ip out;
    authz_slice null_slice = {NULL, 0};
    cr_assert_eq(authz_ip_parse(null_slice, &out), -1);
}

Test(cidr, ipv6)
{
    authz_ip a = ip("2001:db8::1");
    cr_assert_eq(a.family, 6);
    uint8_t want[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    cr_assert_arr_eq(a.bytes, want, 16);

    authz_ip full = ip("2001:0DB8:0000:0000:0000:0000:0000:0001");
    cr_assert_arr_eq(full.bytes, want, 16);

    authz_ip any = ip("::");
    uint8_t zero[16] = {0};
    cr_assert_eq(any.family, 6);
    cr_assert_arr_eq(any.bytes, zero, 16);

    authz_ip tail = ip("1::");
    cr_assert_eq(tail.bytes[1], 1);
    ip("1:2:3:4:5:6:7::");
    ip("::2:3:4:5:6:7:8");
    ip("1:2:3:4:5:6:7:8");
}

Test(cidr, ipv6_embedded_ipv4)
{
    authz_ip a = ip("64:ff9b::192.0.2.33");
    cr_assert_eq(a.family, 6);
    cr_assert_eq(a.bytes[12], 192);
    cr_assert_eq(a.bytes[15], 33);
    ip("1:2:3:4:5:6:1.2.3.4");
    ip("::1.2.3.4");
}

Test(cidr, ipv6_bad_forms)
{
    const char *bad[] = {"1::2::3",
                         ":::",
                         ":1::",
                         "1:",
                         "1::2:",
                         ":",
                         "1:2:3:4:5:6:7:8:9",
                         "1:2:3:4:5:6:7",
                         "12345::",
                         "g::",
                         "fe80::1%eth0",
                         "[::1]",
                         "::1 ",
                         "1:2:3:4:5:6:7:1.2.3.4",
                         "::01.2.3.4",
                         "::1.2.3",
                         "::1.2.3.4:5",
                         "1:2:3:4:5:6:7:8::",
                         "::ffff:1.2.3.256"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        authz_ip out;
        cr_assert_eq(authz_ip_parse(authz_slice_from_cstr(bad[i]), &out), -1, "[%s] should fail", bad[i]);
    }
}

Test(cidr, mapped_ipv4_is_normalised)
{
    authz_ip a = ip("::ffff:10.1.2.3");
    cr_assert_eq(a.family, 4);
    uint8_t want[4] = {10, 1, 2, 3};
    cr_assert_arr_eq(a.bytes, want, 4);
    authz_ip b = ip("::FFFF:a01:203");
    cr_assert_eq(b.family, 4);
    cr_assert_arr_eq(b.bytes, want, 4);

    authz_cidr c = cidr("::ffff:10.0.0.0/104");
    cr_assert_eq(c.net.family, 4);
    cr_assert_eq(c.prefix_len, 8);
    cr_assert_eq(c.net.bytes[0], 10);
    authz_cidr all = cidr("::ffff:0:0/96");
    cr_assert_eq(all.net.family, 4);
    cr_assert_eq(all.prefix_len, 0);
    authz_cidr host = cidr("::ffff:1.2.3.4");
    cr_assert_eq(host.net.family, 4);
    cr_assert_eq(host.prefix_len, 32);
}

Test(cidr, prefixes)
{
    authz_cidr c = cidr("10.0.0.0/8");
    cr_assert_eq(c.net.family, 4);
    cr_assert_eq(c.prefix_len, 8);
    cr_assert_eq(cidr("0.0.0.0/0").prefix_len, 0);
    cr_assert_eq(cidr("10.1.2.3").prefix_len, 32);
    cr_assert_eq(cidr("fd00::/8").prefix_len, 8);
    cr_assert_eq(cidr("fd00::1").prefix_len, 128);
    cr_assert_eq(cidr("::/0").prefix_len, 0);
    cr_assert_eq(cidr("10.0.0.128/25").prefix_len, 25);
}

Test(cidr, bad_prefixes)
{
    const char *bad[] = {
        "10.0.0.0/33",   "fd00::/129",   "10.0.0.0/08", "10.0.0.0/",          "10.0.0.0/-1",
        "10.0.0.0/+8",   "10.0.0.0/8/8", "10.0.0.1/8",  "10.0.0.128/24",      "fd00::1/64",
        "10.0.0.0/1000", "10.0.0.0/ 8",  "/8",          "::ffff:10.0.0.0/80", "::ffff:10.0.0.0/96",
        "fe80::/10%eth0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        authz_cidr out;
        cr_assert_eq(authz_cidr_parse(authz_slice_from_cstr(bad[i]), &out), -1, "[%s] should fail", bad[i]);
    }
}

Test(cidr, contains)
{
    authz_cidr c = cidr("10.0.0.0/8");
    authz_ip in = ip("10.255.1.2"), out = ip("11.0.0.1"), mapped = ip("::ffff:10.9.9.9"), v6 = ip("fd00::1");
    cr_assert(authz_cidr_contains(&c, &in));
    cr_assert_not(authz_cidr_contains(&c, &out));
    cr_assert(authz_cidr_contains(&c, &mapped));
    cr_assert_not(authz_cidr_contains(&c, &v6));

    authz_cidr odd = cidr("192.168.4.0/22");
    authz_ip edge_in = ip("192.168.7.255"), edge_out = ip("192.168.8.0");
    cr_assert(authz_cidr_contains(&odd, &edge_in));
    cr_assert_not(authz_cidr_contains(&odd, &edge_out));

    authz_cidr six = cidr("fd00:1::/33");
    authz_ip six_in = ip("fd00:1:7fff::1"), six_out = ip("fd00:1:8000::1");
    cr_assert(authz_cidr_contains(&six, &six_in));
    cr_assert_not(authz_cidr_contains(&six, &six_out));

    authz_cidr any4 = cidr("0.0.0.0/0");
    cr_assert(authz_cidr_contains(&any4, &out));
    cr_assert_not(authz_cidr_contains(&any4, &v6));

    authz_cidr host = cidr("10.0.0.1");
    authz_ip h1 = ip("10.0.0.1"), h2 = ip("10.0.0.2");
    cr_assert(authz_cidr_contains(&host, &h1));
    cr_assert_not(authz_cidr_contains(&host, &h2));
}

Test(cidr, list_contains)
{
    authz_cidr list[3] = {cidr("10.0.0.0/8"), cidr("fd00::/8"), cidr("192.168.0.0/16")};
    authz_ip a = ip("192.168.1.1"), b = ip("fdab::1"), c = ip("172.16.0.1");
    cr_assert(authz_cidr_list_contains(list, 3, &a));
    cr_assert(authz_cidr_list_contains(list, 3, &b));
    cr_assert_not(authz_cidr_list_contains(list, 3, &c));
    cr_assert_not(authz_cidr_list_contains(list, 0, &a));
}

Test(cidr, format)
{
    expect_format("10.0.0.1", "10.0.0.1");
    expect_format("::ffff:10.0.0.1", "10.0.0.1");
    expect_format("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1");
    expect_format("::", "::");
    expect_format("::1", "::1");
    expect_format("1::", "1::");
    expect_format("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1");
    expect_format("2001:0:0:1:0:0:0:1", "2001:0:0:1::1");
    expect_format("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1");
    expect_format("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8");
    expect_format("64:ff9b::192.0.2.33", "64:ff9b::c000:221");
}

Test(cidr, format_mapped_and_small_buffers)
{
    authz_ip mapped = {.family = 6, .bytes = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4}};
    char buf[46];
    cr_assert_str_eq(authz_ip_format(&mapped, buf, sizeof buf), "::ffff:1.2.3.4");

    authz_ip a = ip("10.0.0.1");
    char small[5];
    cr_assert_str_eq(authz_ip_format(&a, small, sizeof small), "10.0");

    authz_ip longest = ip("1111:2222:3333:4444:5555:6666:7777:8888");
    cr_assert_str_eq(authz_ip_format(&longest, buf, sizeof buf), "1111:2222:3333:4444:5555:6666:7777:8888");
}

Test(cidr, format_parse_round_trip)
{
    const char *texts[] = {"fe80::1:2", "2001:db8:85a3::8a2e:370:7334", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:0"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        authz_ip a = ip(texts[i]);
        char buf[46];
        authz_ip b = ip(authz_ip_format(&a, buf, sizeof buf));
        cr_assert_eq(a.family, b.family);
        cr_assert_arr_eq(a.bytes, b.bytes, 16, "%s -> %s", texts[i], buf);
    }
}
