#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>

#include "srv_grpc.h"

/* Room for any growth: the budget is not what these tests look at. */
#define ANY_ROOM SIZE_MAX

TestSuite(srv_grpc);

static size_t frame(uint8_t *out, uint8_t flag, const char *msg, size_t len)
{
    out[0] = flag;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
    memcpy(out + 5, msg, len);
    return len + 5;
}

Test(srv_grpc, one_message_one_buffer)
{
    uint8_t buf[64];
    size_t n = frame(buf, 0, "hello", 5), used = 0;
    srv_grpc_reader r = {.max_len = 100};

    cr_assert_eq(srv_grpc_reader_feed(&r, buf, n, ANY_ROOM, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert_eq(used, n);
    cr_assert_eq(r.msg_len, 5);
    cr_assert(memcmp(r.msg, "hello", 5) == 0);
    srv_grpc_reader_release(&r);
}

Test(srv_grpc, prefix_split_across_frames_byte_by_byte)
{
    uint8_t buf[64];
    size_t n = frame(buf, 0, "split-me", 8), used = 0;
    srv_grpc_reader r = {.max_len = 100};

    for (size_t i = 0; i + 1 < n; i++) {
        cr_assert_eq(srv_grpc_reader_feed(&r, buf + i, 1, ANY_ROOM, &used), SRV_GRPC_READ_MORE, "byte %zu",
                     i);
        cr_assert_eq(used, 1);
    }
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + n - 1, 1, ANY_ROOM, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert(memcmp(r.msg, "split-me", 8) == 0);
    srv_grpc_reader_release(&r);
}

Test(srv_grpc, prefix_split_3_2_then_body_split)
{
    uint8_t buf[64];
    size_t n = frame(buf, 0, "abcdefgh", 8), used = 0;
    srv_grpc_reader r = {.max_len = 100};

    cr_assert_eq(srv_grpc_reader_feed(&r, buf, 3, ANY_ROOM, &used), SRV_GRPC_READ_MORE);
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 3, 4, ANY_ROOM, &used), SRV_GRPC_READ_MORE);
    cr_assert_eq(used, 4);
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 7, n - 7, ANY_ROOM, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert(memcmp(r.msg, "abcdefgh", 8) == 0);
    srv_grpc_reader_release(&r);
}

Test(srv_grpc, several_messages_in_one_buffer)
{
    uint8_t buf[64];
    size_t n = frame(buf, 0, "one", 3);
    size_t used = 0;
    srv_grpc_reader r = {.max_len = 100};

    n += frame(buf + n, 0, "", 0);
    n += frame(buf + n, 0, "three", 5);

    cr_assert_eq(srv_grpc_reader_feed(&r, buf, n, ANY_ROOM, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert_eq(used, 8);
    cr_assert(memcmp(r.msg, "one", 3) == 0);
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 8, n - 8, ANY_ROOM, &used), SRV_GRPC_READ_MESSAGE,
                 "a completed message is reported again until next()");
    cr_assert_eq(used, 0);
    srv_grpc_reader_next(&r);
    cr_assert(srv_grpc_reader_idle(&r));
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 8, n - 8, ANY_ROOM, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert_eq(used, 5);
    cr_assert_eq(r.msg_len, 0);
    cr_assert_not_null(srv_grpc_reader_message(&r));
    srv_grpc_reader_next(&r);
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 13, n - 13, ANY_ROOM, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert_eq(used, 10);
    cr_assert(memcmp(r.msg, "three", 5) == 0);
    srv_grpc_reader_release(&r);
}

Test(srv_grpc, oversized_length_rejected_before_allocation)
{
    const uint8_t huge[5] = {0, 0xFF, 0xFF, 0xFF, 0xFF};
    size_t used = 0;
    srv_grpc_reader r = {.max_len = 1024 * 1024};

    cr_assert_eq(srv_grpc_reader_feed(&r, huge, 5, ANY_ROOM, &used), SRV_GRPC_READ_TOO_LARGE);
    cr_assert_eq(srv_grpc_reader_held(&r), 0, "nothing may be allocated for a rejected length");
    cr_assert_null(r.msg);
}

Test(srv_grpc, bound_is_inclusive)
{
    uint8_t buf[64];
    size_t n = frame(buf, 0, "12345678", 8), used = 0;
    srv_grpc_reader ok = {.max_len = 8};
    srv_grpc_reader bad = {.max_len = 7};

    cr_assert_eq(srv_grpc_reader_feed(&ok, buf, n, ANY_ROOM, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert_eq(srv_grpc_reader_feed(&bad, buf, n, ANY_ROOM, &used), SRV_GRPC_READ_TOO_LARGE);
    srv_grpc_reader_release(&ok);
}

Test(srv_grpc, buffer_grows_with_arrived_bytes_not_declared_length)
{
    /* A prefix announcing 1 MiB, then the body in uneven pieces. */
    static uint8_t body[1u << 20];
    const uint8_t prefix[5] = {0, 0, 0x10, 0, 0};
    size_t used = 0, have = 0, step = 1;
    srv_grpc_reader r = {.max_len = 1u << 20};

    memset(body, 'x', sizeof(body));
    cr_assert_eq(srv_grpc_reader_feed(&r, prefix, 5, ANY_ROOM, &used), SRV_GRPC_READ_MORE);
    cr_assert_eq(srv_grpc_reader_held(&r), 0, "the declared length alone allocates nothing");
    while (have < sizeof(body)) {
        size_t n = step < sizeof(body) - have ? step : sizeof(body) - have;
        srv_grpc_read rc = srv_grpc_reader_feed(&r, body + have, n, ANY_ROOM, &used);
        have += n;
        cr_assert_eq(rc, have == sizeof(body) ? SRV_GRPC_READ_MESSAGE : SRV_GRPC_READ_MORE);
        cr_assert_geq(srv_grpc_reader_held(&r), have);
        cr_assert_leq(srv_grpc_reader_held(&r), 2 * have, "held %zu for %zu bytes arrived",
                      srv_grpc_reader_held(&r), have);
        cr_assert_leq(srv_grpc_reader_held(&r), sizeof(body));
        step = step * 3 + 7;
    }
    cr_assert(memcmp(srv_grpc_reader_message(&r), body, sizeof(body)) == 0);
    cr_assert_eq(srv_grpc_reader_release(&r), sizeof(body));
    cr_assert_eq(srv_grpc_reader_held(&r), 0);
    cr_assert_null(r.msg);
}

Test(srv_grpc, growth_stays_within_the_room_given)
{
    uint8_t buf[5 + 300];
    size_t n = frame(buf, 0, "", 0), used = 0;
    srv_grpc_reader r = {.max_len = 1000};

    buf[3] = 0x01; /* declares 300 bytes */
    buf[4] = 0x2C;
    memset(buf + 5, 'y', 300);
    n = sizeof(buf);
    /* 100 bytes arrive with room for 100: exactly that is taken. */
    cr_assert_eq(srv_grpc_reader_feed(&r, buf, 105, 100, &used), SRV_GRPC_READ_MORE);
    cr_assert_eq(srv_grpc_reader_held(&r), 100);
    /* Doubling to 200 would need 100 more; 50 arrive with room for 60: 150. */
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 105, 50, 60, &used), SRV_GRPC_READ_MORE);
    cr_assert_eq(srv_grpc_reader_held(&r), 150);
    /* 150 more arrive with room for 149: refused, nothing grows. */
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 155, n - 155, 149, &used), SRV_GRPC_READ_OVER_BUDGET);
    cr_assert_eq(srv_grpc_reader_held(&r), 150);
    cr_assert_eq(srv_grpc_reader_release(&r), 150);
}

Test(srv_grpc, no_room_no_bytes)
{
    uint8_t buf[64];
    size_t n = frame(buf, 0, "abc", 3), used = 0;
    srv_grpc_reader r = {.max_len = 100};

    cr_assert_eq(srv_grpc_reader_feed(&r, buf, n, 0, &used), SRV_GRPC_READ_OVER_BUDGET);
    cr_assert_eq(srv_grpc_reader_held(&r), 0);
    /* An empty message needs no room at all. */
    n = frame(buf, 0, "", 0);
    srv_grpc_reader r2 = {.max_len = 100};
    cr_assert_eq(srv_grpc_reader_feed(&r2, buf, n, 0, &used), SRV_GRPC_READ_MESSAGE);
    srv_grpc_reader_release(&r2);
}

Test(srv_grpc, compressed_flag_rejected)
{
    uint8_t buf[64];
    size_t n = frame(buf, 1, "zz", 2), used = 0;
    srv_grpc_reader r = {.max_len = 100};

    cr_assert_eq(srv_grpc_reader_feed(&r, buf, n, ANY_ROOM, &used), SRV_GRPC_READ_COMPRESSED);
    n = frame(buf, 7, "zz", 2);
    srv_grpc_reader_next(&r);
    cr_assert_eq(srv_grpc_reader_feed(&r, buf, n, ANY_ROOM, &used), SRV_GRPC_READ_BAD_FLAG);
}

Test(srv_grpc, prefix_write_roundtrip)
{
    uint8_t p[5];
    cr_assert_eq(srv_grpc_prefix_write(p, 0x01020304u), 0);
    cr_assert(memcmp(p, "\x00\x01\x02\x03\x04", 5) == 0);
#if SIZE_MAX > UINT32_MAX
    cr_assert_eq(srv_grpc_prefix_write(p, (size_t)UINT32_MAX + 1u), -1);
#endif
}

struct timeout_case {
    const char *in;
    int rc;
    uint64_t ns;
};

Test(srv_grpc, timeout_table)
{
    static const struct timeout_case cases[] = {
        {"1n", 0, 1},
        {"0m", 0, 0},
        {"200m", 0, 200000000ull},
        {"5S", 0, 5000000000ull},
        {"2M", 0, 120000000000ull},
        {"1H", 0, 3600000000000ull},
        {"7u", 0, 7000},
        {"99999999n", 0, 99999999ull},
        {"99999999H", 0, UINT64_MAX},
        {"00000001S", 0, 1000000000ull},
        {"123456789m", -1, 0},
        {"", -1, 0},
        {"m", -1, 0},
        {"10", -1, 0},
        {"10s", -1, 0},
        {"10 m", -1, 0},
        {"-1m", -1, 0},
        {"1mm", -1, 0},
        {"+1m", -1, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t ns = 12345;
        int rc = srv_grpc_timeout_parse(authz_slice_from_cstr(cases[i].in), &ns);
        cr_assert_eq(rc, cases[i].rc, "'%s'", cases[i].in);
        if (rc == 0) {
            cr_assert_eq(ns, cases[i].ns, "'%s' gave %llu", cases[i].in, (unsigned long long)ns);
        }
    }
}

Test(srv_grpc, percent_encoding)
{
    char out[64];
    cr_assert_eq(srv_grpc_percent_encode(AUTHZ_SLICE_LIT("plain text: ok"), out, sizeof(out)), 14);
    cr_assert_str_eq(out, "plain text: ok");
    srv_grpc_percent_encode(AUTHZ_SLICE_LIT("100% \xC3\xA9\n~\x7F"), out, sizeof(out));
    cr_assert_str_eq(out, "100%25 %C3%A9%0A~%7F");
}

Test(srv_grpc, percent_encoding_never_cuts_an_escape)
{
    char out[6];
    size_t n = srv_grpc_percent_encode(AUTHZ_SLICE_LIT("ab\ncd"), out, sizeof(out));
    cr_assert_eq(n, 5);
    cr_assert_str_eq(out, "ab%0A");
    n = srv_grpc_percent_encode(AUTHZ_SLICE_LIT("abc\n"), out, sizeof(out));
    cr_assert_str_eq(out, "abc", "the escape does not fit and is dropped whole");
    cr_assert_eq(n, 3);
}

Test(srv_grpc, content_type_is_grpc_or_a_subtype)
{
    static const char *const ok[] = {"application/grpc", "application/grpc+proto", "application/grpc+json",
                                     "application/grpc;charset=utf-8", "application/grpc+"};
    static const char *const bad[] = {
        "application/grpcXYZ", "application/grpc-web", "application/grpc-web+proto",
        "application/grp",     "application/json",     "",
        "Application/grpc",    " application/grpc",    "application/grpc2"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        cr_assert(srv_grpc_content_type_ok(authz_slice_from_cstr(ok[i])), "'%s' refused", ok[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_not(srv_grpc_content_type_ok(authz_slice_from_cstr(bad[i])), "'%s' accepted", bad[i]);
    }
}

Test(srv_grpc, truncation_inside_the_prefix)
{
    uint8_t buf[64];
    size_t used = 0;
    char why[128];
    srv_grpc_reader r = {.max_len = 100};

    frame(buf, 0, "abcdef", 6);
    cr_assert_eq(srv_grpc_reader_truncation(&r, why, sizeof(why)), 0, "nothing arrived: not truncated");
    cr_assert_eq(srv_grpc_reader_feed(&r, buf, 3, ANY_ROOM, &used), SRV_GRPC_READ_MORE);
    cr_assert_gt(srv_grpc_reader_truncation(&r, why, sizeof(why)), 0);
    cr_assert_str_eq(why, "truncated message: the stream ended after 3 of the 5 prefix bytes");
    srv_grpc_reader_release(&r);
}

Test(srv_grpc, truncation_inside_the_body)
{
    uint8_t buf[64];
    size_t n = frame(buf, 0, "abcdef", 6), used = 0;
    char why[128];
    srv_grpc_reader r = {.max_len = 100};

    cr_assert_eq(srv_grpc_reader_feed(&r, buf, 5, ANY_ROOM, &used), SRV_GRPC_READ_MORE);
    cr_assert_gt(srv_grpc_reader_truncation(&r, why, sizeof(why)), 0,
                 "a prefix alone is a truncated message");
    cr_assert_str_eq(why, "truncated message: the stream ended after 0 of 6 message bytes");
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 5, 4, ANY_ROOM, &used), SRV_GRPC_READ_MORE);
    cr_assert_eq(srv_grpc_reader_truncation(&r, why, sizeof(why)), strlen(why));
    cr_assert_str_eq(why, "truncated message: the stream ended after 4 of 6 message bytes");
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 9, n - 9, ANY_ROOM, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert_eq(srv_grpc_reader_truncation(&r, why, sizeof(why)), 0, "a whole message is not truncated");
    srv_grpc_reader_release(&r);
}

Test(srv_grpc, truncation_text_fits_small_buffers)
{
    uint8_t buf[64];
    size_t used = 0;
    char why[10];
    srv_grpc_reader r = {.max_len = 100};

    frame(buf, 0, "abcdef", 6);
    srv_grpc_reader_feed(&r, buf, 2, ANY_ROOM, &used);
    cr_assert_eq(srv_grpc_reader_truncation(&r, why, sizeof(why)), 9);
    cr_assert_str_eq(why, "truncated");
    srv_grpc_reader_release(&r);
}

Test(srv_grpc, small_messages_use_the_slot)
{
    uint8_t slot[16];
    uint8_t buf[64];
    size_t n = frame(buf, 0, "0123456789", 10), used = 0;
    srv_grpc_reader r = {.max_len = 100, .slot = slot, .slot_size = sizeof(slot)};

    cr_assert_eq(srv_grpc_reader_feed(&r, buf, 8, 9, &used), SRV_GRPC_READ_OVER_BUDGET,
                 "the slot counts the declared length against the room");
    srv_grpc_reader_release(&r);
    r = (srv_grpc_reader){.max_len = 100, .slot = slot, .slot_size = sizeof(slot)};
    cr_assert_eq(srv_grpc_reader_feed(&r, buf, 8, 10, &used), SRV_GRPC_READ_MORE);
    cr_assert_eq(r.msg, slot);
    cr_assert_eq(srv_grpc_reader_held(&r), 10);
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 8, n - 8, 0, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert(memcmp(srv_grpc_reader_message(&r), "0123456789", 10) == 0);
    /* A larger message after it leaves the slot for the heap, keeping what arrived. */
    srv_grpc_reader_next(&r);
    n = frame(buf, 0, "abcdefghijklmnopqrstuvwxyz", 26);
    cr_assert_eq(srv_grpc_reader_feed(&r, buf, 20, ANY_ROOM, &used), SRV_GRPC_READ_MORE);
    cr_assert_neq(r.msg, slot);
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 20, n - 20, ANY_ROOM, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert(memcmp(srv_grpc_reader_message(&r), "abcdefghijklmnopqrstuvwxyz", 26) == 0);
    cr_assert_eq(memcmp(slot, "0123456789", 10), 0, "the slot kept the first message");
    srv_grpc_reader_release(&r);
    cr_assert_null(r.msg);
}
