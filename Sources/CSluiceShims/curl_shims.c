#include "CSluiceShims.h"

CURLcode sluice_curl_easy_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
CURLcode sluice_curl_easy_setopt_off_t(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
CURLcode sluice_curl_easy_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
CURLcode sluice_curl_easy_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
CURLcode sluice_curl_easy_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
CURLcode sluice_curl_easy_setopt_data_cb(CURL *h, CURLoption o, sluice_curl_data_cb v) { return curl_easy_setopt(h, o, v); }
CURLcode sluice_curl_easy_setopt_xferinfo_cb(CURL *h, sluice_curl_xferinfo_cb v) {
    return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, v);
}

CURLMcode sluice_curl_multi_setopt_long(CURLM *h, CURLMoption o, long v) { return curl_multi_setopt(h, o, v); }
CURLMcode sluice_curl_multi_setopt_pointer(CURLM *h, CURLMoption o, void *v) { return curl_multi_setopt(h, o, v); }
CURLMcode sluice_curl_multi_setopt_socket_cb(CURLM *h, sluice_curl_socket_cb v) {
    return curl_multi_setopt(h, CURLMOPT_SOCKETFUNCTION, v);
}
CURLMcode sluice_curl_multi_setopt_timer_cb(CURLM *h, sluice_curl_timer_cb v) {
    return curl_multi_setopt(h, CURLMOPT_TIMERFUNCTION, v);
}

CURLcode sluice_curl_easy_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
CURLcode sluice_curl_easy_getinfo_double(CURL *h, CURLINFO i, double *v) { return curl_easy_getinfo(h, i, v); }
CURLcode sluice_curl_easy_getinfo_off_t(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }
CURLcode sluice_curl_easy_getinfo_pointer(CURL *h, CURLINFO i, void **v) { return curl_easy_getinfo(h, i, v); }
