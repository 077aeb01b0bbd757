#include "srv_event.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "authz_time.h"

void srv_event_emit(const char *event, json_t *fields)
{
    char when[AUTHZ_TIME_RFC3339_SIZE];
    char *text = NULL;
    json_t *line = json_object();

    if (fields == NULL || line == NULL) {
        json_decref(fields);
        json_decref(line);
        return;
    }
    /* time and event first, as in the decision log. */
    if (authz_time_rfc3339((int64_t)time(NULL), when)) {
        json_object_set_new(line, "time", json_string(when));
    }
    json_object_set_new(line, "event", json_string(event));
    json_object_update(line, fields);
    text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text != NULL) {
        size_t len = strlen(text);
        text[len] = '\n';
        /* One write: lines of other threads do not interleave with it. */
        (void)!write(2, text, len + 1);
    }
    free(text);
    json_decref(line);
    json_decref(fields);
}
