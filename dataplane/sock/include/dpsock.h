/*
 * dpsock.h: the C ABI of the dataplane's shared-memory sockets (libdpsock.so).
 *
 * POSIX-like calls with a dp_ prefix. On failure they return -1 (NULL for
 * dp_attach) and set errno. Only UDP (SOCK_DGRAM) for now; datagrams carry at
 * most 2048 bytes. A dp_client may be used from several threads.
 *
 *   dp_client *c = dp_attach("/run/dataplane-apps.sock");
 *   int s = dp_socket(c, AF_INET, SOCK_DGRAM);
 *   dp_bind(c, s, (struct sockaddr *)&addr, sizeof addr);
 *   dp_sendto(c, s, buf, len, (struct sockaddr *)&to, sizeof to);
 *   dp_recvfrom(c, s, buf, sizeof buf, (struct sockaddr *)&from, &fromlen);
 *   dp_close(c, s);
 *   dp_detach(c);
 *
 * Kept in step with dataplane/sock/src/capi.rs by hand.
 */
#ifndef DPSOCK_H
#define DPSOCK_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An attachment to a running dataplane. */
typedef struct DpClient dp_client;

/* Attaches to the daemon listening at path (its sockets.path); NULL on failure. */
dp_client *dp_attach(const char *path);

/* Closes every socket of the client and detaches. */
void dp_detach(dp_client *c);

/* A new socket: domain AF_INET or AF_INET6, type SOCK_DGRAM. */
int dp_socket(dp_client *c, int domain, int type);

/* Binds a socket (port 0: an ephemeral port). */
int dp_bind(dp_client *c, int s, const struct sockaddr *addr, socklen_t len);

/* Queues one datagram (binding to an ephemeral port first if needed). */
ssize_t dp_sendto(dp_client *c, int s, const void *buf, size_t len,
                  const struct sockaddr *to, socklen_t tolen);

/* Waits for one datagram; its sender into from/fromlen if not NULL. */
ssize_t dp_recvfrom(dp_client *c, int s, void *buf, size_t len,
                    struct sockaddr *from, socklen_t *fromlen);

/* Closes a socket. */
int dp_close(dp_client *c, int s);

#ifdef __cplusplus
}
#endif

#endif /* DPSOCK_H */
