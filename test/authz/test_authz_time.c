/* authz_time: the one RFC 3339 formatter, against known dates, the edges of
 * years 0000-9999, the int64 extremes, and gmtime_r as an oracle. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "authz_time.h"

static void expect_rfc3339(int64_t secs, const char *want)
{
    char out[AUTHZ_TIME_RFC3339_SIZE];
    cr_expect(authz_time_rfc3339(secs, out), "%lld", (long long)secs);
    cr_expect_str_eq(out, want, "%lld", (long long)secs);
    char text[AUTHZ_TIME_TEXT_SIZE];
    cr_expect_str_eq(authz_time_text(secs, text, sizeof text), want);
}

static void expect_out_of_range(int64_t secs)
{
    char out[AUTHZ_TIME_RFC3339_SIZE] = "x";
    cr_expect_not(authz_time_rfc3339(secs, out), "%lld", (long long)secs);
    cr_expect_str_eq(out, "");
    char text[AUTHZ_TIME_TEXT_SIZE], want[AUTHZ_TIME_TEXT_SIZE];
    snprintf(want, sizeof want, "%lld s", (long long)secs);
    cr_expect_str_eq(authz_time_text(secs, text, sizeof text), want);
}

Test(authz_time, known_dates)
{
    expect_rfc3339(0, "1970-01-01T00:00:00Z");
    expect_rfc3339(-1, "1969-12-31T23:59:59Z");
    expect_rfc3339(951782400, "2000-02-29T00:00:00Z");
    expect_rfc3339(4107542400, "2100-03-01T00:00:00Z"); /* 2100 is no leap year */
    expect_rfc3339(1709251199, "2024-02-29T23:59:59Z");
    expect_rfc3339(1764652450, "2025-12-02T05:14:10Z");
}

Test(authz_time, edges_of_four_digit_years)
{
    expect_rfc3339(-62167219200, "0000-01-01T00:00:00Z");
    expect_rfc3339(253402300799, "9999-12-31T23:59:59Z");
    expect_out_of_range(-62167219201);
    expect_out_of_range(253402300800);
    expect_out_of_range(INT64_MAX);
    expect_out_of_range(INT64_MIN);
}

Test(authz_time, truncates_to_the_buffer)
{
    char small[8];
    cr_expect_str_eq(authz_time_text(0, small, sizeof small), "1970-01");
    cr_expect_str_eq(authz_time_text(INT64_MIN, small, sizeof small), "-922337");
    char none[1] = {'x'};
    cr_expect_eq(authz_time_text(0, none, 0), none, "size 0 writes nothing");
    cr_expect_eq(none[0], 'x');
}

/* Every day boundary and odd second over 1900-2400, against the C library. */
Test(authz_time, agrees_with_gmtime)
{
    for (int64_t secs = -2208988800; secs < 13569465600; secs += 86400 * 7 + 3607) {
        time_t t = (time_t)secs;
        struct tm tm;
        cr_assert_not_null(gmtime_r(&t, &tm));
        char want[64];
        strftime(want, sizeof want, "%Y-%m-%dT%H:%M:%SZ", &tm);
        char out[AUTHZ_TIME_RFC3339_SIZE];
        cr_assert(authz_time_rfc3339(secs, out));
        cr_assert_str_eq(out, want, "%lld", (long long)secs);
    }
}
