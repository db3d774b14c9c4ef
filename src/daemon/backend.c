#include "backend.h"
#include <signal.h>
#include <string.h>
#include <stdio.h>
bool backend_valid(const char *name) { return true; }
int backend_prepare(const struct config *cfg, const struct backend_user *user,
	struct backend_plan *plan, char *err, size_t errlen)
{
	memset(plan, 0, sizeof(*plan));
	plan->stop_signal = SIGTERM;
	if (!strcmp(cfg->backend, "none")) return 0;
	if (cfg->backend[0] == '/') { strcpy(plan->strings, cfg->backend); plan->argv[0] = plan->strings; plan->ready = BACKEND_READY_FIFO; return 0; }
	snprintf(err, errlen, "stub"); return -1;
}
