#define _GNU_SOURCE
#include "sluice_epoll.h"
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

int sluice_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int sluice_epoll_watch(int epfd, int fd, int curl_what) {
    struct epoll_event ev = {0};
    if (curl_what & CURL_POLL_IN) ev.events |= EPOLLIN;
    if (curl_what & CURL_POLL_OUT) ev.events |= EPOLLOUT;
    ev.data.fd = fd;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == 0) return 0;
    if (errno != ENOENT) return -1;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int sluice_epoll_unwatch(int epfd, int fd) {
    struct epoll_event ev = {0};
    if (epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev) == 0) return 0;
    if (errno == ENOENT || errno == EBADF) return 0;
    return -1;
}

int sluice_epoll_wait(int epfd, int *fds, int *cselect, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        int mask = 0;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) mask |= CURL_CSELECT_IN;
        if (evs[i].events & EPOLLOUT) mask |= CURL_CSELECT_OUT;
        if (evs[i].events & EPOLLERR) mask |= CURL_CSELECT_ERR;
        fds[i] = evs[i].data.fd;
        cselect[i] = mask;
    }
    return n;
}

int sluice_eventfd_create(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

void sluice_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t r;
    do { r = write(fd, &one, sizeof one); } while (r < 0 && errno == EINTR);
}

void sluice_eventfd_drain(int fd) {
    uint64_t value;
    ssize_t r;
    do { r = read(fd, &value, sizeof value); } while (r < 0 && errno == EINTR);
}

int sluice_curl_msg_is_done(const CURLMsg *msg) { return msg->msg == CURLMSG_DONE; }
CURL *sluice_curl_msg_easy(const CURLMsg *msg) { return msg->easy_handle; }
CURLcode sluice_curl_msg_result(const CURLMsg *msg) { return msg->data.result; }
