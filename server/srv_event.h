/* srv_event: operational events (startup, config reload) as JSON lines on
 * stderr, beside the decision log, so one log pipeline reads everything:
 * {"time":"2024-05-01T12:00:00Z","event":"config_reload",...}. */
#ifndef SRV_EVENT_H
#define SRV_EVENT_H

#include <jansson.h>

/* Writes |fields| (an object; "time" and "event" are set here) as one line
 * on stderr in one write(2), and drops the caller's reference to |fields|.
 * NULL |fields| (a failed json_object) writes nothing. Errors are ignored:
 * serving does not depend on the log. */
void srv_event_emit(const char *event, json_t *fields);

#endif
