// SPDX-License-Identifier: (MIT OR Apache-2.0)
// The dataplane's XDP program: steers frames to the AF_XDP socket of their receive queue.
//
// Modes (map `mode`, one entry):
//   0 take all: every frame goes to the queue's AF_XDP socket (router ports);
//   1 host: only IPv4/IPv6 packets to one of our addresses (map `addrs`), ARP whose target
//     IP is ours and ICMPv6 neighbour solicitations/advertisements for our addresses go
//     to AF_XDP; everything else passes to the kernel (SSH keeps working);
//   2 drop: every frame is dropped (the kernel-only reference of the benchmark).
// A frame for a queue without a socket passes to the kernel.
// Counters per queue and CPU (map `counters`): redirected, passed, dropped.

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_QUEUES 64

struct counters {
	__u64 redirected;
	__u64 passed;
	__u64 dropped;
};

// An address as 16 bytes: IPv6 as is, IPv4 as ::ffff:a.b.c.d.
struct addr {
	__u8 bytes[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} mode SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct addr);
	__type(value, __u8);
} addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, struct counters);
} counters SEC(".maps");

static __always_inline int ours_v4(const void *p)
{
	struct addr a = {};
	a.bytes[10] = 0xff;
	a.bytes[11] = 0xff;
	__builtin_memcpy(&a.bytes[12], p, 4);
	return bpf_map_lookup_elem(&addrs, &a) != 0;
}

static __always_inline int ours_v6(const void *p)
{
	struct addr a;
	__builtin_memcpy(a.bytes, p, 16);
	return bpf_map_lookup_elem(&addrs, &a) != 0;
}

// True when the frame is for us in host mode.
static __always_inline int for_us(void *data, void *end)
{
	if (data + ETH_HLEN > end)
		return 0;
	__u16 proto = ((struct ethhdr *)data)->h_proto;
	void *l3 = data + ETH_HLEN;
	if (proto == bpf_htons(ETH_P_IP)) {
		// Destination address at offset 16 of the IPv4 header.
		if (l3 + 20 > end)
			return 0;
		return ours_v4(l3 + 16);
	}
	if (proto == bpf_htons(ETH_P_ARP)) {
		// Ethernet/IPv4 ARP: target protocol address at offset 24.
		if (l3 + 28 > end)
			return 0;
		return ours_v4(l3 + 24);
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		if (l3 + 40 > end)
			return 0;
		if (ours_v6(l3 + 24))
			return 1;
		// ICMPv6 (next header 58) neighbour solicitation (135) or advertisement
		// (136): the target address at offset 8 of the message.
		__u8 next = *((__u8 *)l3 + 6);
		if (next != 58)
			return 0;
		void *icmp = l3 + 40;
		if (icmp + 24 > end)
			return 0;
		__u8 type = *(__u8 *)icmp;
		if (type != 135 && type != 136)
			return 0;
		return ours_v6(icmp + 8);
	}
	return 0;
}

SEC("xdp")
int xdp_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 queue = ctx->rx_queue_index;
	__u32 zero = 0;
	__u32 *m = bpf_map_lookup_elem(&mode, &zero);
	__u32 how = m ? *m : 0;
	struct counters *c = bpf_map_lookup_elem(&counters, &queue);
	int action;

	if (how == 2) {
		action = XDP_DROP;
	} else if (how == 1 && !for_us(data, end)) {
		action = XDP_PASS;
	} else {
		action = bpf_redirect_map(&xsks, queue, XDP_PASS);
	}
	if (c) {
		if (action == XDP_REDIRECT)
			c->redirected++;
		else if (action == XDP_DROP)
			c->dropped++;
		else
			c->passed++;
	}
	return action;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
