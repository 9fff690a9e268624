/* Seccomp profiles to BPF, with libseccomp, in the caller: the sandbox only loads the result. */
#ifndef LXRUN_FILTER_H
#define LXRUN_FILTER_H

#include <stdint.h>

struct lxrun_seccomp_arg {
	unsigned int index;
	int op;               /* enum scmp_compare */
	uint64_t value;
	uint64_t value_two;
};

struct lxrun_seccomp_rule {
	const char *name;     /* a syscall name; names this libseccomp does not know are skipped */
	uint32_t action;      /* SCMP_ACT_* (with its errno or trace value folded in) */
	const struct lxrun_seccomp_arg *args;
	int n_args;
};

struct lxrun_seccomp_profile {
	uint32_t default_action;
	const uint32_t *arches;   /* SCMP_ARCH_*, besides the native one */
	int n_arches;
	const struct lxrun_seccomp_rule *rules;
	int n_rules;
};

/* 0 and a malloc'd array of struct sock_filter (*len instructions; free with lxrun_seccomp_free), or
 * -errno with *bad_rule the index of the rule libseccomp refused (-1 if none was at fault). */
int lxrun_seccomp_compile(const struct lxrun_seccomp_profile *profile, void **filter, int *len, int *bad_rule);
void lxrun_seccomp_free(void *filter);

#endif
