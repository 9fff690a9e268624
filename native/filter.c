/* Seccomp profiles to BPF with libseccomp; see filter.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "filter.h"

#define MAX_ARGS 6

static int add_rule(scmp_filter_ctx ctx, const struct lxrun_seccomp_rule *rule)
{
	int nr = seccomp_syscall_resolve_name(rule->name);
	if (nr == __NR_SCMP_ERROR)
		return 0;  /* unknown to this libseccomp or arch: skipped, as docker's runtimes do */
	if (rule->n_args > MAX_ARGS)
		return -EINVAL;
	struct scmp_arg_cmp cmp[MAX_ARGS];
	for (int i = 0; i < rule->n_args; i++) {
		cmp[i].arg = rule->args[i].index;
		cmp[i].op = (enum scmp_compare)rule->args[i].op;
		cmp[i].datum_a = rule->args[i].value;
		cmp[i].datum_b = rule->args[i].value_two;
	}
	return seccomp_rule_add_array(ctx, rule->action, nr, (unsigned int)rule->n_args, cmp);
}

/* libseccomp 2.5 exports BPF to a descriptor only: a memfd, read back into memory. */
static int export_bpf(scmp_filter_ctx ctx, void **filter, int *len)
{
	int fd = memfd_create("lxrun-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = seccomp_export_bpf(ctx, fd);
	off_t size = rc < 0 ? 0 : lseek(fd, 0, SEEK_END);
	if (rc == 0 && (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0))
		rc = -EPROTO;
	void *buf = rc == 0 ? malloc((size_t)size) : NULL;
	if (rc == 0 && (!buf || pread(fd, buf, (size_t)size, 0) != size))
		rc = buf ? -EIO : -ENOMEM;
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	*filter = buf;
	*len = (int)(size / (off_t)sizeof(struct sock_filter));
	return 0;
}

int lxrun_seccomp_compile(const struct lxrun_seccomp_profile *profile, void **filter, int *len, int *bad_rule)
{
	*bad_rule = -1;
	scmp_filter_ctx ctx = seccomp_init(profile->default_action);
	if (!ctx)
		return -EINVAL;
	int rc = 0;
	/* The filter is loaded by the sandbox itself, after no_new_privs: don't let libseccomp set it. */
	if (seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) < 0)
		rc = -EINVAL;
	/* A binary tree of syscall numbers instead of a list: every syscall the task makes pays for it. */
	if (rc == 0 && seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2) < 0)
		rc = -EINVAL;
	for (int i = 0; rc == 0 && i < profile->n_arches; i++) {
		rc = seccomp_arch_add(ctx, profile->arches[i]);
		if (rc == -EEXIST)
			rc = 0;
	}
	for (int i = 0; rc == 0 && i < profile->n_rules; i++) {
		rc = add_rule(ctx, &profile->rules[i]);
		if (rc < 0)
			*bad_rule = i;
	}
	if (rc == 0)
		rc = export_bpf(ctx, filter, len);
	seccomp_release(ctx);
	return rc;
}

void lxrun_seccomp_free(void *filter)
{
	free(filter);
}
