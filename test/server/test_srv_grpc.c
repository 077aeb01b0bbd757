#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>

#include "srv_grpc.h"

static authz_arena arena;

static void setup(void)
{
    authz_arena_init(&arena, NULL, 0, 0);
}

static void teardown(void)
{
    authz_arena_free(&arena);
}

TestSuite(srv_grpc, .init = setup, .fini = teardown);

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

    cr_assert_eq(srv_grpc_reader_feed(&r, buf, n, &arena, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert_eq(used, n);
    cr_assert_eq(r.msg_len, 5);
    cr_assert(memcmp(r.msg, "hello", 5) == 0);
}

Test(srv_grpc, prefix_split_across_frames_byte_by_byte)
{
    uint8_t buf[64];
    size_t n = frame(buf, 0, "split-me", 8), used = 0;
    srv_grpc_reader r = {.max_len = 100};

    for (size_t i = 0; i + 1 < n; i++) {
        cr_assert_eq(srv_grpc_reader_feed(&r, buf + i, 1, &arena, &used), SRV_GRPC_READ_MORE, "byte %zu", i);
        cr_assert_eq(used, 1);
    }
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + n - 1, 1, &arena, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert(memcmp(r.msg, "split-me", 8) == 0);
}

Test(srv_grpc, prefix_split_3_2_then_body_split)
{
    uint8_t buf[64];
    size_t n = frame(buf, 0, "abcdefgh", 8), used = 0;
    srv_grpc_reader r = {.max_len = 100};

    cr_assert_eq(srv_grpc_reader_feed(&r, buf, 3, &arena, &used), SRV_GRPC_READ_MORE);
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 3, 4, &arena, &used), SRV_GRPC_READ_MORE);
    cr_assert_eq(used, 4);
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 7, n - 7, &arena, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert(memcmp(r.msg, "abcdefgh", 8) == 0);
}

Test(srv_grpc, several_messages_in_one_buffer)
{
    uint8_t buf[64];
    size_t n = frame(buf, 0, "one", 3);
    size_t used = 0;
    srv_grpc_reader r = {.max_len = 100};

    n += frame(buf + n, 0, "", 0);
    n += frame(buf + n, 0, "three", 5);

    cr_assert_eq(srv_grpc_reader_feed(&r, buf, n, &arena, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert_eq(used, 8);
    cr_assert(memcmp(r.msg, "one", 3) == 0);
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 8, n - 8, &arena, &used), SRV_GRPC_READ_MESSAGE,
                 "a completed message is reported again until next()");
    cr_assert_eq(used, 0);
    srv_grpc_reader_next(&r);
    cr_assert(srv_grpc_reader_idle(&r));
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 8, n - 8, &arena, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert_eq(used, 5);
    cr_assert_eq(r.msg_len, 0);
    cr_assert_not_null(r.msg);
    srv_grpc_reader_next(&r);
    cr_assert_eq(srv_grpc_reader_feed(&r, buf + 13, n - 13, &arena, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert_eq(used, 10);
    cr_assert(memcmp(r.msg, "three", 5) == 0);
}

Test(srv_grpc, oversized_length_rejected_before_allocation)
{
    const uint8_t huge[5] = {0, 0xFF, 0xFF, 0xFF, 0xFF};
    size_t used = 0;
    srv_grpc_reader r = {.max_len = 1024 * 1024};

    cr_assert_eq(srv_grpc_reader_feed(&r, huge, 5, &arena, &used), SRV_GRPC_READ_TOO_LARGE);
    cr_assert_eq(arena.held, 0, "nothing may be allocated for a rejected length");
    cr_assert_null(r.msg);
}

Test(srv_grpc, bound_is_inclusive)
{
    uint8_t buf[64];
    size_t n = frame(buf, 0, "12345678", 8), used = 0;
    srv_grpc_reader ok = {.max_len = 8};
    srv_grpc_reader bad = {.max_len = 7};

    cr_assert_eq(srv_grpc_reader_feed(&ok, buf, n, &arena, &used), SRV_GRPC_READ_MESSAGE);
    cr_assert_eq(srv_grpc_reader_feed(&bad, buf, n, &arena, &used), SRV_GRPC_READ_TOO_LARGE);
}

Test(srv_grpc, arena_budget_refusal_is_nomem)
{
    authz_arena small;
    uint8_t buf[5] = {0, 0, 0, 0x40, 0};
    size_t used = 0;
    srv_grpc_reader r = {.max_len = 1024 * 1024};

    authz_arena_init(&small, NULL, 256, 1024);
    cr_assert_eq(srv_grpc_reader_feed(&r, buf, 5, &small, &used), SRV_GRPC_READ_NOMEM);
    authz_arena_free(&small);
}

Test(srv_grpc, compressed_flag_rejected)
{
    uint8_t buf[64];
    size_t n = frame(buf, 1, "zz", 2), used = 0;
    srv_grpc_reader r = {.max_len = 100};

    cr_assert_eq(srv_grpc_reader_feed(&r, buf, n, &arena, &used), SRV_GRPC_READ_COMPRESSED);
    n = frame(buf, 7, "zz", 2);
    srv_grpc_reader_next(&r);
    cr_assert_eq(srv_grpc_reader_feed(&r, buf, n, &arena, &used), SRV_GRPC_READ_BAD_FLAG);
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
