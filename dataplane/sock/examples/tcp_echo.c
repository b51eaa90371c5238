/*
 * tcp_echo.c: a TCP echo server on the dataplane's shared-memory sockets, in C.
 *
 *   cc -I dataplane/sock/include dataplane/sock/examples/tcp_echo.c \
 *      -L target/release -ldpsock -o tcp_echo
 *   LD_LIBRARY_PATH=target/release ./tcp_echo /run/dataplane-apps.sock 7
 *
 * Serves connections one after another: echoes each until its end of stream, then
 * closes it; prints the bytes echoed per connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpsock.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s ATTACH-PATH PORT\n", argv[0]);
        return 2;
    }
    dp_client *c = dp_attach(argv[1]);
    if (!c) {
        fprintf(stderr, "dp_attach: %s\n", strerror(errno));
        return 1;
    }
    int l = dp_socket(c, AF_INET, SOCK_STREAM);
    /* Options as on a kernel socket: reuse the port, 512 KiB rings per connection. */
    int one = 1, ring = 512 * 1024;
    if (l < 0 || dp_setsockopt(c, l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        dp_setsockopt(c, l, SOL_SOCKET, SO_RCVBUF, &ring, sizeof ring) < 0 ||
        dp_setsockopt(c, l, SOL_SOCKET, SO_SNDBUF, &ring, sizeof ring) < 0) {
        fprintf(stderr, "dp_setsockopt: %s\n", strerror(errno));
        return 1;
    }
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[2]));
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (l < 0 || dp_bind(c, l, (struct sockaddr *)&addr, sizeof addr) < 0 || dp_listen(c, l, 16) < 0) {
        fprintf(stderr, "listen: %s\n", strerror(errno));
        return 1;
    }
    printf("ready %d\n", atoi(argv[2]));
    fflush(stdout);
    for (;;) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof peer;
        int s = dp_accept(c, l, (struct sockaddr *)&peer, &plen);
        if (s < 0) {
            fprintf(stderr, "dp_accept: %s\n", strerror(errno));
            return 1;
        }
        if (dp_setsockopt(c, s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
            fprintf(stderr, "TCP_NODELAY: %s\n", strerror(errno));
        }
        char buf[8192];
        long total = 0;
        for (;;) {
            ssize_t n = dp_recv(c, s, buf, sizeof buf, 0);
            if (n < 0) {
                fprintf(stderr, "dp_recv: %s\n", strerror(errno));
                break;
            }
            if (n == 0) {
                break;
            }
            for (ssize_t off = 0; off < n;) {
                ssize_t w = dp_send(c, s, buf + off, (size_t)(n - off), 0);
                if (w < 0) {
                    fprintf(stderr, "dp_send: %s\n", strerror(errno));
                    return 1;
                }
                off += w;
            }
            total += n;
        }
        dp_shutdown(c, s, SHUT_WR);
        dp_close(c, s);
        printf("echoed %ld bytes to %s\n", total, inet_ntoa(peer.sin_addr));
        fflush(stdout);
    }
}
