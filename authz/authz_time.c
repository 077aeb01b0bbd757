#include "authz_time.h"

#include <stdio.h>

#define SECS_PER_DAY 86400

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
 * civil_from_days); int64 arithmetic cannot overflow for |days| < 2^47,
 * and |int64| / 86400 stays below 2^47. */
static void civil_from_days(int64_t days, int64_t *year, unsigned *month, unsigned *day)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *day = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *month = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *year = yoe + era * 400 + (*month <= 2);
}

/* |v| as exactly |width| decimal digits at |p|. */
static void put_digits(char *p, unsigned v, size_t width)
{
    for (size_t i = width; i > 0; i--) {
        p[i - 1] = (char)('0' + v % 10u);
        v /= 10u;
    }
}

bool authz_time_rfc3339(int64_t secs, char out[AUTHZ_TIME_RFC3339_SIZE])
{
    int64_t days = secs / SECS_PER_DAY;
    int64_t rem = secs % SECS_PER_DAY;
    if (rem < 0) {
        rem += SECS_PER_DAY;
        days--;
    }
    int64_t year;
    unsigned month, day;
    civil_from_days(days, &year, &month, &day);
    out[0] = '\0';
    if (year < 0 || year > 9999)
        return false;
    /* Written without printf: the decision log formats one per request. */
    put_digits(out, (unsigned)year, 4);
    out[4] = '-';
    put_digits(out + 5, month, 2);
    out[7] = '-';
    put_digits(out + 8, day, 2);
    out[10] = 'T';
    put_digits(out + 11, (unsigned)(rem / 3600), 2);
    out[13] = ':';
    put_digits(out + 14, (unsigned)(rem / 60 % 60), 2);
    out[16] = ':';
    put_digits(out + 17, (unsigned)(rem % 60), 2);
    out[19] = 'Z';
    out[20] = '\0';
    return true;
}

const char *authz_time_text(int64_t secs, char *buf, size_t size)
{
    char text[AUTHZ_TIME_RFC3339_SIZE];
    if (size == 0)
        return buf;
    if (authz_time_rfc3339(secs, text))
        snprintf(buf, size, "%s", text);
    else
        snprintf(buf, size, "%lld s", (long long)secs);
    return buf;
}
