/* The C side of the DPDK port (built only with the cargo feature `dpdk`).
 *
 * DPDK's fast-path calls (rte_eth_rx_burst, rte_pktmbuf_alloc, mbuf field access) are
 * static inline functions, so Rust cannot call them through a plain binding; this file
 * wraps the few the port needs, and holds the pieces that are simpler in C:
 *
 * - a mempool driver ("onvm_pool") whose get/put are the manager's own buffer pool
 *   (callbacks into Rust), so that DPDK and onvm-rs share one free list;
 * - an mbuf pool whose mbufs carry pinned external buffers: mbuf i's buffer is the
 *   packet area of onvm buffer i + 1 in the shared region, so a PMD writes received
 *   frames straight into memory NFs read, and transmits from it.
 */
#include <errno.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_dev.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_memory.h>

/* Implemented in Rust (src/dpdk.rs). All-or-nothing, like mempool dequeue. */
extern int onvm_pool_get(void **objs, unsigned n);
extern int onvm_pool_put(void *const *objs, unsigned n);
extern unsigned onvm_pool_count(void);

static int ops_alloc(struct rte_mempool *mp) { (void)mp; return 0; }
static void ops_free(struct rte_mempool *mp) { (void)mp; }
static int ops_enqueue(struct rte_mempool *mp, void *const *objs, unsigned n) { (void)mp; return onvm_pool_put(objs, n); }
static int ops_dequeue(struct rte_mempool *mp, void **objs, unsigned n) { (void)mp; return onvm_pool_get(objs, n); }
static unsigned ops_count(const struct rte_mempool *mp) { (void)mp; return onvm_pool_count(); }

static struct rte_mempool_ops onvm_ops = {
    .name = "onvm_pool",
    .alloc = ops_alloc,
    .free = ops_free,
    .enqueue = ops_enqueue,
    .dequeue = ops_dequeue,
    .get_count = ops_count,
};

/* rte_eal_init with argv; registers the mempool driver first. Returns 0 or -rte_errno. */
int onvm_dpdk_init(int argc, char **argv) {
    if (rte_mempool_register_ops(&onvm_ops) < 0)
        return -EEXIST;
    if (rte_eal_init(argc, argv) < 0)
        return -rte_errno;
    return 0;
}

/* Probe a vdev from its devargs ("net_null0,size=64") and give its port id. */
int onvm_dpdk_probe(const char *devargs, const char *name, uint16_t *port) {
    int r = rte_dev_probe(devargs);
    if (r < 0 && r != -EEXIST)
        return r;
    return rte_eth_dev_get_port_by_name(name, port);
}

struct ext_ctx {
    char *first;        /* packet area of buffer 1 */
    uint32_t stride;    /* bytes from one buffer to the next */
    uint16_t buf_len;   /* headroom + data room */
    struct rte_mbuf **table;
};

/* Like DPDK's (private) rte_pktmbuf_init_extmem: object i gets buffer i + 1's area. */
static void init_ext(struct rte_mempool *mp, void *opaque, void *obj, unsigned i) {
    struct ext_ctx *c = opaque;
    struct rte_mbuf *m = obj;
    struct rte_mbuf_ext_shared_info *shinfo;
    memset(m, 0, mp->elt_size);
    m->priv_size = 0;
    m->buf_len = c->buf_len;
    m->buf_addr = c->first + (size_t)i * c->stride;
    rte_mbuf_iova_set(m, rte_mem_virt2iova(m->buf_addr));
    m->data_off = RTE_MIN(RTE_PKTMBUF_HEADROOM, m->buf_len);
    m->pool = mp;
    m->nb_segs = 1;
    m->port = RTE_MBUF_PORT_INVALID;
    m->ol_flags = RTE_MBUF_F_EXTERNAL;
    rte_mbuf_refcnt_set(m, 1);
    m->next = NULL;
    shinfo = RTE_PTR_ADD(m, sizeof(struct rte_mbuf));
    m->shinfo = shinfo;
    shinfo->free_cb = NULL;
    shinfo->fcb_opaque = m;
    rte_mbuf_ext_refcnt_set(shinfo, 1);
    c->table[i] = m;
}

/* The mbuf pool over the region: `count` mbufs, mbuf i on the area at first + i * stride,
 * served by the onvm_pool driver. `table[i]` receives mbuf i. NULL on failure (rte_errno). */
struct rte_mempool *onvm_dpdk_ext_pool(const char *name, void *region, size_t region_len, char *first,
                                       uint32_t stride, uint32_t count, uint16_t buf_len,
                                       struct rte_mbuf **table) {
    struct rte_pktmbuf_pool_private priv = {
        .mbuf_data_room_size = buf_len,
        .mbuf_priv_size = 0,
        .flags = RTE_PKTMBUF_POOL_F_PINNED_EXT_BUF,
    };
    struct ext_ctx ctx = { .first = first, .stride = stride, .buf_len = buf_len, .table = table };
    struct rte_mempool *mp;
    int r = rte_extmem_register(region, region_len, NULL, 0, 4096);
    if (r < 0 && rte_errno != EEXIST)
        return NULL;
    /* A per-lcore cache, so that a PMD that frees its transmitted mbufs one by one
     * (net_null, net_ring) and refills its receive ring takes them from the cache, and
     * the driver below is called in bulk when it over- or underflows: not once per
     * packet. What sits in a cache is, for the onvm pool, held by the port;
     * onvm_dpdk_pool_flush gives it back. */
    unsigned cache = count / 16 < 256 ? count / 16 : 256;
    mp = rte_mempool_create_empty(name, count, sizeof(struct rte_mbuf) + sizeof(struct rte_mbuf_ext_shared_info),
                                  cache, sizeof(struct rte_pktmbuf_pool_private), SOCKET_ID_ANY, 0);
    if (mp == NULL)
        return NULL;
    if (rte_mempool_set_ops_byname(mp, "onvm_pool", NULL) != 0) {
        rte_mempool_free(mp);
        return NULL;
    }
    rte_pktmbuf_pool_init(mp, &priv);
    if (rte_mempool_populate_default(mp) < 0) {
        rte_mempool_free(mp);
        return NULL;
    }
    rte_mempool_obj_iter(mp, init_ext, &ctx);
    return mp;
}

/* Empty every lcore's cache of `mp` back through its driver (at release: nobody else
 * uses the pool then). */
void onvm_dpdk_pool_flush(struct rte_mempool *mp) {
    unsigned i;
    if (mp->cache_size == 0)
        return;
    for (i = 0; i < RTE_MAX_LCORE; i++)
        rte_mempool_cache_flush(&mp->local_cache[i], mp);
}

/* A plain DPDK mbuf pool, for PMDs that insist on owning their packet memory. */
struct rte_mempool *onvm_dpdk_copy_pool(const char *name, uint32_t n, uint16_t data_room) {
    return rte_pktmbuf_pool_create(name, n, 256, 0, data_room + RTE_PKTMBUF_HEADROOM, SOCKET_ID_ANY);
}

/* Configure `nq` rx/tx queue pairs on `mp`, set MTU/MAC/promiscuity, start. With
 * `vlan_strip`, ask for the RX VLAN strip offload where the device offers it (the port
 * puts the tag back from vlan_tci; src/dpdk.rs says why). 0 or -errno; `*step` names the
 * step that failed. */
int onvm_dpdk_start(uint16_t port, struct rte_mempool *mp, uint16_t nq, uint16_t mtu, int promisc,
                    int vlan_strip, const uint8_t *mac, const char **step) {
    struct rte_eth_conf conf;
    struct rte_eth_dev_info info;
    int r;
    memset(&conf, 0, sizeof(conf));
    *step = "info";
    if ((r = rte_eth_dev_info_get(port, &info)) != 0)
        return r;
    if (nq > 1) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf = RTE_ETH_RSS_IP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_TCP;
        conf.rx_adv_conf.rss_conf.rss_hf &= info.flow_type_rss_offloads;
        if (conf.rx_adv_conf.rss_conf.rss_hf == 0)
            conf.rxmode.mq_mode = RTE_ETH_MQ_RX_NONE;
    }
    if (mtu != 0)
        conf.rxmode.mtu = mtu;
    if (vlan_strip)
        conf.rxmode.offloads |= info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_VLAN_STRIP;
    *step = "configure";
    if ((r = rte_eth_dev_configure(port, nq, nq, &conf)) != 0)
        return r;
    for (uint16_t q = 0; q < nq; q++) {
        *step = "set up an rx queue";
        if ((r = rte_eth_rx_queue_setup(port, q, 1024, rte_eth_dev_socket_id(port), NULL, mp)) != 0)
            return r;
        *step = "set up a tx queue";
        if ((r = rte_eth_tx_queue_setup(port, q, 1024, rte_eth_dev_socket_id(port), NULL)) != 0)
            return r;
    }
    if (mac != NULL) {
        struct rte_ether_addr a;
        memcpy(a.addr_bytes, mac, 6);
        *step = "set the MAC address";
        if ((r = rte_eth_dev_default_mac_addr_set(port, &a)) != 0)
            return r;
    }
    *step = "start";
    if ((r = rte_eth_dev_start(port)) != 0)
        return r;
    /* Some PMDs (net_tap) apply the MTU only through set_mtu on a started port. */
    if (mtu != 0) {
        *step = "set the MTU";
        if ((r = rte_eth_dev_set_mtu(port, mtu)) != 0 && r != -ENOTSUP)
            return r;
    }
    /* Not every vdev has a promiscuous mode (net_null, net_ring); that is not an error. */
    if (promisc)
        rte_eth_promiscuous_enable(port);
    else
        rte_eth_promiscuous_disable(port);
    return 0;
}

void onvm_dpdk_stop(uint16_t port) {
    rte_eth_dev_stop(port);
    rte_eth_dev_close(port);
}

uint16_t onvm_dpdk_rx(uint16_t port, uint16_t q, struct rte_mbuf **pkts, uint16_t n) {
    return rte_eth_rx_burst(port, q, pkts, n);
}

uint16_t onvm_dpdk_tx(uint16_t port, uint16_t q, struct rte_mbuf **pkts, uint16_t n) {
    return rte_eth_tx_burst(port, q, pkts, n);
}

/* ipackets, opackets, imissed, ierrors, oerrors, rx_nombuf */
int onvm_dpdk_stats(uint16_t port, uint64_t out[6]) {
    struct rte_eth_stats s;
    int r = rte_eth_stats_get(port, &s);
    if (r != 0)
        return r;
    out[0] = s.ipackets; out[1] = s.opackets; out[2] = s.imissed;
    out[3] = s.ierrors; out[4] = s.oerrors; out[5] = s.rx_nombuf;
    return 0;
}

void *onvm_mbuf_buf_addr(const struct rte_mbuf *m) { return m->buf_addr; }
void *onvm_mbuf_data(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, void *); }

/* Everything the port reads of a received mbuf, in one call (these accessors are not
 * inlined into Rust): its buffer, data offset, packet length and segments; the return
 * value says whether the PMD took the outer VLAN tag out, and then `*tci` is its TCI. */
int onvm_mbuf_rx_info(const struct rte_mbuf *m, void **buf_addr, uint16_t *off, uint32_t *len, uint16_t *segs,
                      uint16_t *tci) {
    *buf_addr = m->buf_addr;
    *off = m->data_off;
    *len = m->pkt_len;
    *segs = m->nb_segs;
    if ((m->ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED) == 0)
        return 0;
    *tci = m->vlan_tci;
    return 1;
}

/* Frame the mbuf as one segment of `len` bytes starting `off` into its buffer. Every
 * offload flag but EXTERNAL is cleared: a VLAN tag travels in the frame's bytes, sent as
 * they are (RTE_MBUF_F_TX_VLAN would have the PMD insert vlan_tci, a stale receive's).
 * `next` (in the mbuf's second cache line, which this would be the only per-packet
 * touch of) is NULL already: it is for every mbuf in or from the mempool (DPDK resets
 * it when a segment is freed), and a received chain is never sent — the port frees a
 * multi-segment receive whole (`rx_burst`). */
void onvm_mbuf_set(struct rte_mbuf *m, uint16_t off, uint16_t len) {
    m->data_off = off;
    m->data_len = len;
    m->pkt_len = len;
    m->nb_segs = 1;
    m->ol_flags &= RTE_MBUF_F_EXTERNAL;
}

struct rte_mbuf *onvm_mbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
void onvm_mbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
const char *onvm_dpdk_strerror(int e) { return rte_strerror(e); }
