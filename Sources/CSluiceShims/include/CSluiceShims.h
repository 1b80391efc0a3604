#ifndef CSLUICE_SHIMS_H
#define CSLUICE_SHIMS_H
/*
 * Typed, non-variadic wrappers for libcurl's variadic entry points, which Swift cannot
 * import directly. Each wrapper forwards to curl_easy_setopt / curl_multi_setopt /
 * curl_easy_getinfo with one argument of a fixed C type.
 */
#include <curl/curl.h>

typedef size_t (*sluice_curl_data_cb)(char *ptr, size_t size, size_t nmemb, void *userdata);
typedef int (*sluice_curl_xferinfo_cb)(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
                                       curl_off_t ultotal, curl_off_t ulnow);
typedef int (*sluice_curl_socket_cb)(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp);
typedef int (*sluice_curl_timer_cb)(CURLM *multi, long timeout_ms, void *userp);

CURLcode sluice_curl_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode sluice_curl_easy_setopt_off_t(CURL *handle, CURLoption option, curl_off_t value);
CURLcode sluice_curl_easy_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode sluice_curl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode sluice_curl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode sluice_curl_easy_setopt_data_cb(CURL *handle, CURLoption option, sluice_curl_data_cb value);
CURLcode sluice_curl_easy_setopt_xferinfo_cb(CURL *handle, sluice_curl_xferinfo_cb value);

CURLMcode sluice_curl_multi_setopt_long(CURLM *handle, CURLMoption option, long value);
CURLMcode sluice_curl_multi_setopt_pointer(CURLM *handle, CURLMoption option, void *value);
CURLMcode sluice_curl_multi_setopt_socket_cb(CURLM *handle, sluice_curl_socket_cb value);
CURLMcode sluice_curl_multi_setopt_timer_cb(CURLM *handle, sluice_curl_timer_cb value);

CURLcode sluice_curl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode sluice_curl_easy_getinfo_double(CURL *handle, CURLINFO info, double *value);
CURLcode sluice_curl_easy_getinfo_off_t(CURL *handle, CURLINFO info, curl_off_t *value);
CURLcode sluice_curl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value);

#include "sluice_epoll.h"

#endif
