// SPDX-License-Identifier: GPL-2.0
// Kernel-path RTP relay (src/media/kernel, docs/kernel-relay.md): a tc ingress program that
// looks up each UDP/IPv4 packet's (destination address, destination port) in `legs`; on a hit
// from the leg's latched source it rewrites the packet to come from the relay's port for the
// other leg and go to that leg's peer (with LEG_RTP: only the negotiated audio payload type of
// the expected SSRC, renumbered into the stream the other leg already receives), fixes the IP
// and UDP checksums, counts it, copies RTP payloads into the `tap` ring buffer for a recorder
// (userspace drains it in batches: no syscall per packet), and sends it out again with
// bpf_redirect. Anything else passes to the stack untouched, so to the relay's socket: SIP,
// unknown ports, another source, RFC 4733 events, RTCP, a new SSRC.
//
// Rebuild the checked-in object with src/media/kernel/build-bpf.sh.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

// Key: where the packet was sent (the relay's address and port for this leg), network order.
struct leg_key {
	__u32 addr;
	__u16 port;
	__u16 pad;
};

// What to do with a hit. Addresses, ports and RTP fields in network order. 88 bytes, no
// implicit padding (the Rust mirror in src/media/kernel/legs.rs tests the layout).
struct leg_val {
	__u32 src_addr;	  // the relay's address for the other leg
	__u32 dst_addr;	  // the other leg's peer
	__u16 src_port;	  // the relay's port for the other leg
	__u16 dst_port;
	__u32 ifindex;	  // where to send it out (egress redirect); 0: hand it to the stack
	__u32 peer_addr;  // the only accepted source: this leg's latched peer
	__u16 peer_port;
	__u8 payload_type; // LEG_RTP: the only payload type relayed here
	__u8 pad0;
	__u32 ssrc_in;	  // LEG_RTP: the only SSRC relayed here
	__u32 ssrc_out;	  // LEG_RTP: the SSRC of the stream the other leg receives
	__u32 ts_offset;  // LEG_RTP: added to the timestamp (host order)
	__u16 seq_offset; // LEG_RTP: added to the sequence number (host order)
	__u16 pad1;
	__u32 tap_id;	  // recording stream id, passed to userspace with the payload
	__u32 flags;	  // LEG_TAP, LEG_SWAP_MAC, LEG_RTP
	// Written by the program:
	__u64 packets;	  // relayed
	__u64 bytes;
	__u64 tap_drops;  // payloads lost because `tap` was full (the recorder fell behind)
	__u64 last_seen;  // bpf_ktime_get_ns() of the last packet relayed
	__u32 last_ts;	  // LEG_RTP: the furthest timestamp and sequence number sent (host order),
	__u16 last_seq;	  // so that userspace continues the stream when it takes the leg back
	__u16 pad2;
};

#define LEG_TAP 1      // copy the payload to `tap`
#define LEG_SWAP_MAC 2 // swap Ethernet addresses (a peer behind a veth or NIC)
#define LEG_RTP 4      // an RTP leg of the router: payload type and SSRC checked, renumbered

// The fixed RTP header's fields the program reads and rewrites.
struct rtp_hdr {
	__u8 vpxcc;
	__u8 mpt;
	__u16 seq;
	__u32 ts;
	__u32 ssrc;
};

// Largest RTP packet the tap copies (G.711 20 ms: 12 + 160 bytes).
#define TAP_MAX 256

// A relayed RTP packet for the recorder, as sent (after the rewrite).
struct tap_rec {
	__u32 tap_id;
	__u16 len;
	__u16 pad;
	__u64 at;	// bpf_ktime_get_ns() when it was relayed
	__u8 data[TAP_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct leg_key);
	__type(value, struct leg_val);
} legs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20); // ~250,000 records: > 1 s at 200,000 packets/s
} tap SEC(".maps");

#define IP_CSUM_OFF (ETH_HLEN + __builtin_offsetof(struct iphdr, check))

SEC("classifier")
int relay(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP || (ip->frag_off & bpf_htons(0x3fff)))
		return TC_ACT_OK;
	struct udphdr *udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > end)
		return TC_ACT_OK;
	struct leg_key key = { .addr = ip->daddr, .port = udp->dest };
	// A GSO super-packet (a sender's UDP_SEGMENT) is several datagrams: the stack's.
	if (skb->gso_segs > 1)
		return TC_ACT_OK;
	struct leg_val *leg = bpf_map_lookup_elem(&legs, &key);
	if (!leg || ip->saddr != leg->peer_addr || udp->source != leg->peer_port)
		return TC_ACT_OK;
	__u32 udp_off = ETH_HLEN + sizeof(struct iphdr);
	__u32 udp_csum_off = udp_off + __builtin_offsetof(struct udphdr, check);
	__u32 rtp_off = udp_off + sizeof(struct udphdr);
	__u16 seq_old = 0, seq_new = 0, last_seq = 0;
	__u32 ts_old = 0, ts_new = 0, ssrc_old = 0, last_ts = 0;
	if (leg->flags & LEG_RTP) {
		struct rtp_hdr *rtp = (void *)(udp + 1);
		if ((void *)(rtp + 1) > end || (rtp->vpxcc >> 6) != 2 ||
		    (rtp->mpt & 0x7f) != leg->payload_type || rtp->ssrc != leg->ssrc_in)
			return TC_ACT_OK;
		seq_old = rtp->seq;
		ts_old = rtp->ts;
		ssrc_old = rtp->ssrc;
		last_seq = bpf_ntohs(seq_old) + leg->seq_offset;
		last_ts = bpf_ntohl(ts_old) + leg->ts_offset;
		seq_new = bpf_htons(last_seq);
		ts_new = bpf_htonl(last_ts);
	}

	__u32 old_saddr = ip->saddr, old_daddr = ip->daddr;
	__u16 old_sport = udp->source, old_dport = udp->dest;
	__u32 new_saddr = leg->src_addr, new_daddr = leg->dst_addr;
	__u16 new_sport = leg->src_port, new_dport = leg->dst_port;
	__u32 l4 = BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | sizeof(__u32);

	// UDP checksum first (its pseudo header covers the addresses), then the IP one.
	bpf_l4_csum_replace(skb, udp_csum_off, old_saddr, new_saddr, l4);
	bpf_l4_csum_replace(skb, udp_csum_off, old_daddr, new_daddr, l4);
	bpf_l4_csum_replace(skb, udp_csum_off, old_sport, new_sport, BPF_F_MARK_MANGLED_0 | sizeof(__u16));
	bpf_l4_csum_replace(skb, udp_csum_off, old_dport, new_dport, BPF_F_MARK_MANGLED_0 | sizeof(__u16));
	bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_saddr, new_saddr, sizeof(__u32));
	bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_daddr, new_daddr, sizeof(__u32));
	bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct iphdr, saddr), &new_saddr, 4, 0);
	bpf_skb_store_bytes(skb, ETH_HLEN + __builtin_offsetof(struct iphdr, daddr), &new_daddr, 4, 0);
	bpf_skb_store_bytes(skb, udp_off + __builtin_offsetof(struct udphdr, source), &new_sport, 2, 0);
	bpf_skb_store_bytes(skb, udp_off + __builtin_offsetof(struct udphdr, dest), &new_dport, 2, 0);
	if (leg->flags & LEG_RTP) {
		__u32 ssrc_new = leg->ssrc_out;
		bpf_l4_csum_replace(skb, udp_csum_off, seq_old, seq_new, BPF_F_MARK_MANGLED_0 | sizeof(__u16));
		bpf_l4_csum_replace(skb, udp_csum_off, ts_old, ts_new, BPF_F_MARK_MANGLED_0 | sizeof(__u32));
		bpf_l4_csum_replace(skb, udp_csum_off, ssrc_old, ssrc_new, BPF_F_MARK_MANGLED_0 | sizeof(__u32));
		bpf_skb_store_bytes(skb, rtp_off + __builtin_offsetof(struct rtp_hdr, seq), &seq_new, 2, 0);
		bpf_skb_store_bytes(skb, rtp_off + __builtin_offsetof(struct rtp_hdr, ts), &ts_new, 4, 0);
		bpf_skb_store_bytes(skb, rtp_off + __builtin_offsetof(struct rtp_hdr, ssrc), &ssrc_new, 4, 0);
		// Only forward, as userspace numbers its stream: a late packet keeps its number
		// without moving the stream back. Racy across CPUs, but one leg's packets come from
		// one peer, in order.
		if ((__u16)(last_seq - leg->last_seq) < 0x8000 || !leg->packets) {
			leg->last_seq = last_seq;
			leg->last_ts = last_ts;
		}
	}

	__u32 payload_len = skb->len - rtp_off;
	__sync_fetch_and_add(&leg->packets, 1);
	__sync_fetch_and_add(&leg->bytes, payload_len);
	__u64 now = bpf_ktime_get_ns();
	leg->last_seen = now;

	if (leg->flags & LEG_TAP) {
		struct tap_rec *rec = bpf_ringbuf_reserve(&tap, sizeof(*rec), 0);
		if (!rec) {
			__sync_fetch_and_add(&leg->tap_drops, 1);
		} else {
			__u32 n = payload_len > TAP_MAX ? TAP_MAX : payload_len;
			// 1..=256 for the verifier, in asm so clang keeps the bound (an empty payload
			// fails the copy below and is recorded as empty).
			asm volatile("%0 += -1; %0 &= 0xff; %0 += 1" : "+r"(n));
			rec->tap_id = leg->tap_id;
			rec->at = now;
			rec->pad = 0;
			rec->len = 0;
			if (bpf_skb_load_bytes(skb, rtp_off, rec->data, n) == 0)
				rec->len = n;
			// Batched wake-ups: userspace polls every few ms, so no notification per record.
			bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
		}
	}

	if (leg->flags & LEG_SWAP_MAC) {
		__u8 mac[2 * ETH_ALEN];
		if (bpf_skb_load_bytes(skb, 0, mac, sizeof(mac)) == 0) {
			bpf_skb_store_bytes(skb, 0, mac + ETH_ALEN, ETH_ALEN, 0);
			bpf_skb_store_bytes(skb, ETH_ALEN, mac, ETH_ALEN, 0);
		}
	}
	if (leg->ifindex)
		return bpf_redirect(leg->ifindex, 0);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
