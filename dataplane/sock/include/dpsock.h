/*
 * dpsock.h: the C ABI of the dataplane's shared-memory sockets (libdpsock.so).
 *
 * POSIX-like calls with a dp_ prefix. On failure they return -1 (NULL for
 * dp_attach) and set errno. UDP (SOCK_DGRAM; datagrams of at most 2048 bytes)
 * and TCP (SOCK_STREAM). A dp_client may be used from several threads; a call
 * that waits (dp_recvfrom, dp_recv, dp_accept, dp_connect) holds no lock.
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

/* TCP: listens on the address given to dp_bind (a port is required). */
int dp_listen(dp_client *c, int s, int backlog);

/* TCP: waits for a connection; its socket number, the peer into addr/len. */
int dp_accept(dp_client *c, int s, struct sockaddr *addr, socklen_t *len);

/* TCP: connects and waits for the handshake. */
int dp_connect(dp_client *c, int s, const struct sockaddr *addr, socklen_t len);

/* TCP: copies up to len bytes into the connection's send ring in shared memory
 * (waits while it is full); the dataplane builds frames straight from the ring. */
ssize_t dp_send(dp_client *c, int s, const void *buf, size_t len, int flags);

/* TCP: waits for bytes, copied out of the connection's receive ring in shared
 * memory (the dataplane wrote them there from the frames); 0 at the end of the
 * stream. */
ssize_t dp_recv(dp_client *c, int s, void *buf, size_t len, int flags);

/* TCP: SHUT_WR / SHUT_RDWR send FIN after the queued bytes; SHUT_RD does nothing. */
int dp_shutdown(dp_client *c, int s, int how);

/* The local / peer address of a socket. */
int dp_getsockname(dp_client *c, int s, struct sockaddr *addr, socklen_t *len);
int dp_getpeername(dp_client *c, int s, struct sockaddr *addr, socklen_t *len);

/* Sets an int option: SOL_SOCKET SO_REUSEADDR (TCP: accepted, a listener may
 * always come back on a port with TIME-WAIT connections), SO_RCVBUF (UDP receive
 * slots; TCP before dp_listen/dp_connect, or a listener: the receive ring of its
 * connections), SO_SNDBUF (TCP, likewise: the send ring), SO_KEEPALIVE; IPPROTO_TCP
 * TCP_NODELAY. Buffers come from the application's buffer memory (ENOBUFS when
 * full); a connected socket's rings are not resized (EISCONN); others ENOPROTOOPT. */
int dp_setsockopt(dp_client *c, int s, int level, int name, const void *val,
                  socklen_t len);

/* Closes a socket (a connection finishes with FIN after its queued bytes). */
int dp_close(dp_client *c, int s);

#ifdef __cplusplus
}
#endif

#endif /* DPSOCK_H */
