// SPDX-License-Identifier: (MIT OR Apache-2.0)
// XDP programs of `dpbench router` (bench/src/router/): the traffic generator, the
// XDP-native reference forwarder, a pass-through for kernel forwarding, and the sink.
//
// gen:  run with BPF_PROG_TEST_RUN in live-frames mode (BPF_F_TEST_XDP_LIVE_FRAMES), IPv4
//       or IPv6 after the header length in its configuration. Each
//       run rewrites the frame from a header template (pages are recycled with whatever
//       the receivers wrote into them), varies the UDP ports per frame (no GRO merging),
//       optionally varies the destination over routes and then recomputes the IPv4
//       header checksum, writes a sequence number and bpf_ktime_get_ns() (CLOCK_MONOTONIC)
//       into the UDP payload, and redirects into the configured interface. With a
//       non-zero interval it paces itself: runs before the next send time return XDP_DROP
//       (recycled at once), so the rate is held in the kernel without a system call per
//       frame.
// fwd:  the XDP-native reference router: IPv4 TTL decrement with the RFC 1624 checksum
//       update (IPv6: hop limit), MAC rewrite to a static next hop, bpf_redirect to the egress interface.
// pass: XDP_PASS (a veth peer needs an XDP program for redirected frames to arrive).
// sink: counts IPv4/UDP and IPv6/UDP frames and bytes per CPU; when recording, pushes (seq, sent ns,
//       received ns) of each frame to a ring buffer for the latency and loss accounting;
//       drops every frame.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define HDR_LEN 42  // Ethernet + IPv4 (no options) + UDP
#define HDR6_LEN 62 // Ethernet + IPv6 (no extension headers) + UDP
#define PAYLOAD 16  // sequence number + send time

struct gen_cfg {
	__u64 interval_ns; // 0: as fast as possible
	__u32 ifindex;	   // where frames are redirected
	__u32 ndst;	   // destinations to cycle through (0 or 1: the template's)
	__u32 dst_base;	   // first destination (host order)
	__u32 dst_step;	   // step between destinations
	__u32 hdr_len;	   // HDR_LEN (IPv4) or HDR6_LEN (IPv6)
	__u32 pad;
	__u8 hdr[64];	   // the first hdr_len bytes of every frame
};

struct gen_state {
	__u64 seq;	// frames sent
	__u64 next_ns;	// pacing: the next send time
	__u64 paced;	// runs dropped by pacing
};

struct fwd_cfg {
	__u32 ifindex;
	__u8 src[6];
	__u8 dst[6];
	__u8 pad[4];
};

struct sink_counts {
	__u64 packets; // IPv4/UDP frames
	__u64 bytes;
	__u64 other;	 // anything else
	__u64 recorded;	 // records pushed
	__u64 lost_recs; // records the ring buffer had no room for
};

struct record {
	__u64 seq;
	__u64 sent_ns;
	__u64 recv_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_cfg);
} gen_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_state);
} gen_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fwd_cfg);
} fwd_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sink_record SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sink_counts);
} sink_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} records SEC(".maps");

static __always_inline __u16 ipv4_csum(const __u16 *w)
{
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < 10; i++)
		s += w[i];
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return ~s;
}

// Rewrites an IPv4 frame from the template: ports, destination, checksum, payload.
static __always_inline int gen_v4(void *data, void *end, struct gen_cfg *cfg, __u64 seq)
{
	if (data + HDR_LEN + PAYLOAD > end)
		return XDP_ABORTED;
	__builtin_memcpy(data, cfg->hdr, HDR_LEN);
	struct iphdr *ip = data + ETH_HLEN;
	struct udphdr *udp = (void *)ip + sizeof(*ip);
	udp->source = bpf_htons(4000 + ((seq >> 8) & 0xff));
	udp->dest = bpf_htons(9000 + (seq & 0xff));
	if (cfg->ndst > 1) {
		__u32 k = (__u32)(seq % cfg->ndst);
		ip->daddr = bpf_htonl(cfg->dst_base + k * cfg->dst_step);
		ip->check = 0;
		ip->check = ipv4_csum((const __u16 *)ip);
	}
	__u64 now = bpf_ktime_get_ns();
	__builtin_memcpy(data + HDR_LEN, &seq, 8);
	__builtin_memcpy(data + HDR_LEN + 8, &now, 8);
	return XDP_REDIRECT;
}

// The same for IPv6 (UDP checksum left 0: routers do not check it when forwarding).
static __always_inline int gen_v6(void *data, void *end, struct gen_cfg *cfg, __u64 seq)
{
	if (data + HDR6_LEN + PAYLOAD > end)
		return XDP_ABORTED;
	__builtin_memcpy(data, cfg->hdr, HDR6_LEN);
	struct udphdr *udp = data + ETH_HLEN + sizeof(struct ipv6hdr);
	udp->source = bpf_htons(4000 + ((seq >> 8) & 0xff));
	udp->dest = bpf_htons(9000 + (seq & 0xff));
	__u64 now = bpf_ktime_get_ns();
	__builtin_memcpy(data + HDR6_LEN, &seq, 8);
	__builtin_memcpy(data + HDR6_LEN + 8, &now, 8);
	return XDP_REDIRECT;
}

SEC("xdp")
int xdp_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct gen_cfg *cfg = bpf_map_lookup_elem(&gen_cfg, &zero);
	struct gen_state *st = bpf_map_lookup_elem(&gen_state, &zero);

	if (!cfg || !st)
		return XDP_ABORTED;
	if (cfg->interval_ns) {
		__u64 now = bpf_ktime_get_ns();
		if (now < st->next_ns) {
			st->paced++;
			return XDP_DROP;
		}
		// After a stall (preemption), start afresh instead of sending a burst.
		if (st->next_ns + 1000000 < now)
			st->next_ns = now;
		st->next_ns += cfg->interval_ns;
	}
	__u64 seq = st->seq;
	int r = cfg->hdr_len == HDR6_LEN ? gen_v6(data, end, cfg, seq) : gen_v4(data, end, cfg, seq);
	if (r != XDP_REDIRECT)
		return r;
	st->seq = seq + 1;
	return bpf_redirect(cfg->ifindex, 0);
}

SEC("xdp")
int xdp_fwd(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct fwd_cfg *cfg = bpf_map_lookup_elem(&fwd_cfg, &zero);
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;

	if (!cfg || (void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data + ETH_HLEN;
		if ((void *)(ip6 + 1) > end || ip6->hop_limit <= 1)
			return XDP_PASS;
		ip6->hop_limit--;
		__builtin_memcpy(eth->h_dest, cfg->dst, 6);
		__builtin_memcpy(eth->h_source, cfg->src, 6);
		return bpf_redirect(cfg->ifindex, 0);
	}
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->ttl <= 1)
		return XDP_PASS;
	// RFC 1624: TTL is the high byte of its 16-bit word.
	__u32 check = ip->check;
	check += bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xffff));
	ip->ttl--;
	__builtin_memcpy(eth->h_dest, cfg->dst, 6);
	__builtin_memcpy(eth->h_source, cfg->src, 6);
	return bpf_redirect(cfg->ifindex, 0);
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct sink_counts *c = bpf_map_lookup_elem(&sink_counts, &zero);
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;

	if (!c)
		return XDP_DROP;
	__u32 off = HDR_LEN;
	if (data + HDR6_LEN + PAYLOAD <= end && eth->h_proto == bpf_htons(ETH_P_IPV6) &&
	    ((struct ipv6hdr *)(data + ETH_HLEN))->nexthdr == IPPROTO_UDP) {
		off = HDR6_LEN;
	} else if (data + HDR_LEN + PAYLOAD > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
		   ip->protocol != IPPROTO_UDP) {
		c->other++;
		return XDP_DROP;
	}
	c->packets++;
	c->bytes += end - data;
	__u32 *rec = bpf_map_lookup_elem(&sink_record, &zero);
	if (rec && *rec) {
		struct record r;
		if (off == HDR6_LEN) {
			__builtin_memcpy(&r.seq, data + HDR6_LEN, 8);
			__builtin_memcpy(&r.sent_ns, data + HDR6_LEN + 8, 8);
		} else {
			__builtin_memcpy(&r.seq, data + HDR_LEN, 8);
			__builtin_memcpy(&r.sent_ns, data + HDR_LEN + 8, 8);
		}
		r.recv_ns = bpf_ktime_get_ns();
		if (bpf_ringbuf_output(&records, &r, sizeof(r), BPF_RB_NO_WAKEUP))
			c->lost_recs++;
		else
			c->recorded++;
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
