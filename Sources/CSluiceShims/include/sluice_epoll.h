#ifndef SLUICE_EPOLL_H
#define SLUICE_EPOLL_H
/*
 * Small non-variadic helpers for SluiceHTTP's event loop: epoll with curl's poll/select
 * vocabulary (CURL_POLL_* in, CURL_CSELECT_* out) so that Swift never touches the packed
 * `struct epoll_event`, an eventfd used to wake the loop, and CURLMsg field access.
 */
#include <curl/curl.h>

/* epoll_create1(EPOLL_CLOEXEC); -1 and errno on failure. */
int sluice_epoll_create(void);
/* Watches fd for CURL_POLL_IN / CURL_POLL_OUT / CURL_POLL_INOUT (level-triggered), adding or
 * modifying the registration as needed. 0 on success, -1 and errno on failure. */
int sluice_epoll_watch(int epfd, int fd, int curl_what);
/* Stops watching fd (ignores "not registered" and closed descriptors). */
int sluice_epoll_unwatch(int epfd, int fd);
/* epoll_wait: fills fds[i] and cselect[i] (CURL_CSELECT_IN | _OUT | _ERR) for up to max ready
 * descriptors; returns their number, 0 on timeout, -1 and errno on failure (EINTR included). */
int sluice_epoll_wait(int epfd, int *fds, int *cselect, int max, int timeout_ms);

/* eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC). */
int sluice_eventfd_create(void);
/* Adds 1 to the eventfd counter (wakes a waiting epoll). */
void sluice_eventfd_signal(int fd);
/* Resets the counter to zero. */
void sluice_eventfd_drain(int fd);

/* Fields of a CURLMsg (the union is awkward from Swift). */
int sluice_curl_msg_is_done(const CURLMsg *msg);
CURL *sluice_curl_msg_easy(const CURLMsg *msg);
CURLcode sluice_curl_msg_result(const CURLMsg *msg);

#endif
