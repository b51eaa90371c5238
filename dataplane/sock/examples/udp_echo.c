/*
 * udp_echo.c: a UDP echo server on the dataplane's shared-memory sockets, in C.
 *
 *   cc -I dataplane/sock/include dataplane/sock/examples/udp_echo.c \
 *      -L target/release -ldpsock -o udp_echo
 *   LD_LIBRARY_PATH=target/release ./udp_echo /run/dataplane-apps.sock 7 [COUNT]
 *
 * Echoes COUNT datagrams (forever without it) and exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dpsock.h"

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s ATTACH-PATH PORT [COUNT]\n", argv[0]);
        return 2;
    }
    long count = argc > 3 ? atol(argv[3]) : -1;
    dp_client *c = dp_attach(argv[1]);
    if (!c) {
        fprintf(stderr, "dp_attach: %s\n", strerror(errno));
        return 1;
    }
    int s = dp_socket(c, AF_INET, SOCK_DGRAM);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[2]));
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (s < 0 || dp_bind(c, s, (struct sockaddr *)&addr, sizeof addr) < 0) {
        fprintf(stderr, "dp_bind: %s\n", strerror(errno));
        return 1;
    }
    printf("ready %d\n", atoi(argv[2]));
    fflush(stdout);
    char buf[2048];
    for (long i = 0; count < 0 || i < count; i++) {
        struct sockaddr_in from;
        socklen_t fromlen = sizeof from;
        ssize_t n = dp_recvfrom(c, s, buf, sizeof buf, (struct sockaddr *)&from, &fromlen);
        if (n < 0) {
            fprintf(stderr, "dp_recvfrom: %s\n", strerror(errno));
            return 1;
        }
        if (dp_sendto(c, s, buf, (size_t)n, (struct sockaddr *)&from, fromlen) < 0) {
            fprintf(stderr, "dp_sendto: %s\n", strerror(errno));
            return 1;
        }
    }
    dp_close(c, s);
    dp_detach(c);
    return 0;
}
