// Linux system calls that Swift's Glibc module does not export: epoll, eventfd, accept4, gettid
// (declared by glibc only under _GNU_SOURCE or in headers the module leaves out). Header
// only; nothing to link beyond libc. Imported by the Registry module alone.
#ifndef REGISTRYD_CLINUX_SHIM_H
#define REGISTRYD_CLINUX_SHIM_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <unistd.h>
#include <sched.h>
#include <malloc.h>

// accept4(2): in libc since glibc 2.10; declared here because <sys/socket.h> hides it
// without _GNU_SOURCE.
extern int accept4(int sockfd, struct sockaddr *addr, socklen_t *addrlen, int flags);

static inline int registryd_accept(int fd) {
    return accept4(fd, (struct sockaddr *)0, (socklen_t *)0, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

/// SOCK_CLOEXEC, which Swift does not import from glibc's socket type enumeration.
static inline int registryd_sock_cloexec(void) { return SOCK_CLOEXEC; }

/// Lowers the calling thread's scheduling priority (Linux applies nice values per thread).
static inline int registryd_nice_this_thread(int nice) {
    return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice);
}

/// Puts the calling thread in SCHED_IDLE (Linux applies the policy per thread with pid 0): it
/// runs only when no normal thread wants that CPU, and is preempted as soon as one does.
/// SCHED_IDLE is 5; <sched.h> names it only under _GNU_SOURCE.
static inline int registryd_idle_this_thread(void) {
    struct sched_param param = { .sched_priority = 0 };
    return sched_setscheduler(0, 5, &param);
}

/// Hands memory freed inside malloc's arenas back to the system (glibc's malloc_trim).
static inline void registryd_malloc_trim(void) { (void)malloc_trim(0); }

#endif
