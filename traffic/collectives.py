"""Collectives over real TCP between worker containers: the traffic a training job makes.

All-reduce as ring, recursive halving-doubling (Rabenseifner), pipelined binary tree and
hierarchical (reduce-scatter in each site, all-reduce of the shard between sites, all-gather in
each site); reduce-scatter, all-gather, broadcast and all-to-all. Real float32 data is reduced
and checked, so a ``#wrong`` count means what it means in NCCL-tests; ``check=False`` moves the
same bytes without filling or verifying (large sweeps).

Each schedule function works on a numpy buffer in place and is a pure function of (rank, group,
sizes), so the unit tests can run every algorithm over in-process socket pairs too.
"""

from __future__ import annotations

import threading

import numpy as np

from traffic.comm import CollectiveError, Comm, _split, concurrently

PIPELINE_BYTES = 1 << 20  # sub-chunk size: reduce one piece while the next is on the wire

ALLREDUCE_ALGOS = ("ring", "hd", "tree", "hier")  # the one list: the twin's model and campaigns import it
OPS = ("allreduce", "reducescatter", "allgather", "broadcast", "alltoall")
# Who runs a collective, and the rank program of each: the twin's own schedules below, or
# PyTorch's torch.distributed over gloo (traffic.torch_bench, in the torch image only).
BACKENDS = {"twin": "traffic.bench", "gloo": "traffic.torch_bench"}


def _mv(a: np.ndarray) -> memoryview:
    return a.data.cast("B")


Step = tuple[tuple[int, int], tuple[int, int], bool, str]  # send, receive, reduce?, phase


def _pieces(a: int, b: int, step: int) -> list[tuple[int, int]]:
    return [(x, min(b, x + step)) for x in range(a, b, step)] or [(a, b)]


def ring_stream(comm: Comm, group: list[int], buf: np.ndarray,
                steps: list[Step]) -> None:
    """Ring steps (send range, receive range, reduce?, phase name) as one pipelined stream, as gloo's and
    NCCL's rings run: each step's receive range is the next step's send range, and a sub-chunk
    (PIPELINE_BYTES) of it goes on to the right as soon as it has arrived from the left and
    been added, not when the whole step is over.

    Why: with a barrier per step, the link to the right idles for a round of latency at every
    one of the 2(p-1) steps, and its TCP flow restarts from an application-limited window each
    time. One sender thread walks the steps' pieces in order, each waiting only for the piece
    it forwards; this thread receives. An error in either ends both and is raised here.
    """
    p = len(group)
    if p == 1 or not steps:
        return
    i = group.index(comm.rank)
    right, left = group[(i + 1) % p], group[(i - 1) % p]
    step = max(1, PIPELINE_BYTES // buf.itemsize)
    for (_, prev_recv, _, _), (send, _, _, _) in zip(steps, steps[1:]):
        assert send == prev_recv, "a ring stream forwards what it received"
    tmp = np.empty(min(len(buf), step) or 1, dtype=buf.dtype)
    done = [0] * len(steps)  # pieces of each step's receive range landed (and added)
    cond = threading.Condition()
    failed = threading.Event()

    def sender() -> None:
        try:
            for s, (send, _, _, _) in enumerate(steps):
                for j, (a, b) in enumerate(_pieces(*send, step)):
                    if s:
                        with cond:
                            while done[s - 1] <= j and not failed.is_set():
                                if not cond.wait(comm.timeout):
                                    raise CollectiveError(
                                        f"rank {comm.rank}: {comm.phase}: nothing from rank {left} "
                                        f"within {comm.timeout:g} s to forward to rank {right}")
                        if failed.is_set():
                            return
                    comm.send(right, _mv(buf[a:b]))
        except BaseException:
            failed.set()
            raise

    def receiver() -> None:
        try:
            for s, (_, recv, reduce, phase) in enumerate(steps):
                comm.phase = phase
                for a, b in _pieces(*recv, step):
                    if reduce:
                        comm.recv(left, _mv(tmp[: b - a]))
                        buf[a:b] += tmp[: b - a]
                    else:
                        comm.recv(left, _mv(buf[a:b]))
                    with cond:
                        done[s] += 1
                        cond.notify()
        except BaseException:
            failed.set()
            with cond:
                cond.notify()
            raise

    concurrently(receiver, sender)


# ---- ring ------------------------------------------------------------------------

def _reduce_scatter_steps(p: int, i: int, n: int, reduce: bool, offset: int = 0) -> list[Step]:
    chunks = _split(n, p)
    return [(chunks[(i - s + offset) % p], chunks[(i - s - 1 + offset) % p], reduce,
             f"ring reduce-scatter step {s + 1}/{p - 1}") for s in range(p - 1)]


def _all_gather_steps(p: int, i: int, n: int, owned: int) -> list[Step]:
    chunks = _split(n, p)
    shift = owned - (i + 1) % p  # 0 when following ring_reduce_scatter
    return [(chunks[(i - s + 1 + shift) % p], chunks[(i - s + shift) % p], False,
             f"ring all-gather step {s + 1}/{p - 1}") for s in range(p - 1)]


def ring_reduce_scatter(comm: Comm, group: list[int], buf: np.ndarray, reduce: bool = True,
                        offset: int = 0) -> int:
    """After p-1 steps, member i holds the fully reduced chunk (i+1+offset) % p; returns its index.
    ``reduce=False`` moves the same bytes without adding them."""
    p = len(group)
    if p == 1:
        return 0
    i = group.index(comm.rank)
    ring_stream(comm, group, buf, _reduce_scatter_steps(p, i, len(buf), reduce, offset))
    return (i + 1 + offset) % p


def ring_all_gather(comm: Comm, group: list[int], buf: np.ndarray, owned: int) -> None:
    """Each member starts owning chunk ``owned``-aligned as after ring_reduce_scatter."""
    p = len(group)
    if p == 1:
        return
    i = group.index(comm.rank)
    ring_stream(comm, group, buf, _all_gather_steps(p, i, len(buf), owned))


def allreduce_ring(comm: Comm, buf: np.ndarray, group: list[int] | None = None,
                   reduce: bool = True) -> None:
    """Reduce-scatter then all-gather, as one stream: the all-gather's first piece leaves as
    soon as the reduce-scatter's last piece of it is added."""
    group = group or list(range(comm.size))
    p = len(group)
    if p == 1:
        return
    i = group.index(comm.rank)
    rs = _reduce_scatter_steps(p, i, len(buf), reduce)
    ring_stream(comm, group, buf, rs + _all_gather_steps(p, i, len(buf), (i + 1) % p))


# ---- recursive halving-doubling (Rabenseifner) ----------------------------------------

def allreduce_hd(comm: Comm, buf: np.ndarray, reduce: bool = True) -> None:
    p, r = comm.size, comm.rank
    if p == 1:
        return
    pof2 = 1 << (p.bit_length() - 1)
    rem = p - pof2
    tmp = np.empty(len(buf), dtype=buf.dtype)
    # Fold the extra ranks in: in the first 2*rem ranks, evens give their data to the odds.
    comm.phase = "hd pre-reduction"
    if r < 2 * rem:
        if r % 2 == 0:
            comm.send(r + 1, _mv(buf))
            newrank = -1
        else:
            comm.recv(r - 1, _mv(tmp))
            if reduce:
                buf += tmp
            newrank = r // 2
    else:
        newrank = r - rem

    def real(nr: int) -> int:
        return nr * 2 + 1 if nr < rem else nr + rem

    if newrank >= 0:
        lo, hi = 0, len(buf)
        ranges = []
        d = pof2 // 2
        step = 0
        while d >= 1:  # reduce-scatter by recursive halving
            step += 1
            comm.phase = f"hd reduce-scatter step {step}"
            partner = real(newrank ^ d)
            mid = lo + (hi - lo) // 2
            keep, give = ((lo, mid), (mid, hi)) if newrank < (newrank ^ d) else ((mid, hi), (lo, mid))
            ranges.append((lo, hi))
            comm.sendrecv(partner, _mv(buf[give[0]:give[1]]), partner,
                          _mv(tmp[: keep[1] - keep[0]]))
            if reduce:
                buf[keep[0]:keep[1]] += tmp[: keep[1] - keep[0]]
            lo, hi = keep
            d //= 2
        d = 1
        while d < pof2:  # all-gather by recursive doubling, retracing the halving
            comm.phase = f"hd all-gather step {step}"
            step -= 1
            partner = real(newrank ^ d)
            plo, phi = ranges.pop()
            other = (hi, phi) if lo == plo else (plo, lo)
            comm.sendrecv(partner, _mv(buf[lo:hi]), partner, _mv(buf[other[0]:other[1]]))
            lo, hi = plo, phi
            d *= 2
    comm.phase = "hd post"
    if r < 2 * rem:
        if r % 2 == 1:
            comm.send(r - 1, _mv(buf))
        else:
            comm.recv(r + 1, _mv(buf))


# ---- pipelined binary tree ----------------------------------------------------------

def allreduce_tree(comm: Comm, buf: np.ndarray, reduce: bool = True) -> None:
    """Reduce up a binary tree rooted at rank 0, then broadcast down, one sub-chunk at a time."""
    p, r = comm.size, comm.rank
    if p == 1:
        return
    children = [c for c in (2 * r + 1, 2 * r + 2) if c < p]
    parent = (r - 1) // 2 if r else None
    step = max(1, PIPELINE_BYTES // buf.itemsize)
    pieces = [(a, min(len(buf), a + step)) for a in range(0, len(buf), step)]
    tmp = np.empty(step, dtype=buf.dtype)
    for n, (a, b) in enumerate(pieces):
        comm.phase = f"tree reduce piece {n + 1}/{len(pieces)}"
        for c in children:
            comm.recv(c, _mv(tmp[: b - a]))
            if reduce:
                buf[a:b] += tmp[: b - a]
        if parent is not None:
            comm.send(parent, _mv(buf[a:b]))
    for n, (a, b) in enumerate(pieces):
        comm.phase = f"tree broadcast piece {n + 1}/{len(pieces)}"
        if parent is not None:
            comm.recv(parent, _mv(buf[a:b]))
        for c in children:
            comm.send(c, _mv(buf[a:b]))


# ---- hierarchical (two-tier: site LAN, WAN) -------------------------------------------

def site_groups(comm: Comm) -> list[list[int]]:
    sites: dict[str, list[int]] = {}
    for info in comm.ranks:
        sites.setdefault(info.site, []).append(info.rank)
    return list(sites.values())


def allreduce_hier(comm: Comm, buf: np.ndarray, reduce: bool = True) -> None:
    """Reduce-scatter inside the site, all-reduce the shard across sites, all-gather inside."""
    groups = site_groups(comm)
    k = len(groups[0])
    if any(len(g) != k for g in groups):
        raise ValueError("hierarchical all-reduce needs the same number of workers in every site")
    mine = next(g for g in groups if comm.rank in g)
    local = mine.index(comm.rank)
    owned = ring_reduce_scatter(comm, mine, buf, reduce)
    a, b = _split(len(buf), k)[owned]
    peers = [g[local] for g in groups]  # same local index in every site
    allreduce_ring(comm, buf[a:b], peers, reduce)
    ring_all_gather(comm, mine, buf, owned)


def allreduce(comm: Comm, buf: np.ndarray, algo: str, reduce: bool = True) -> None:
    if algo == "ring":
        allreduce_ring(comm, buf, reduce=reduce)
    elif algo == "hd":
        allreduce_hd(comm, buf, reduce)
    elif algo == "tree":
        allreduce_tree(comm, buf, reduce)
    elif algo == "hier":
        allreduce_hier(comm, buf, reduce)
    else:
        raise ValueError(f"unknown all-reduce algorithm {algo!r} (use {', '.join(ALLREDUCE_ALGOS)})")


# ---- the other collectives ---------------------------------------------------------

def reduce_scatter(comm: Comm, buf: np.ndarray, reduce: bool = True) -> tuple[int, int]:
    """Ring reduce-scatter; rank r ends with chunk r reduced. Returns (start, end) of chunk r."""
    owned = ring_reduce_scatter(comm, list(range(comm.size)), buf, reduce, offset=-1)
    return _split(len(buf), comm.size)[owned]


def all_gather(comm: Comm, buf: np.ndarray) -> None:
    """Rank r contributes chunk r of buf; everyone ends with all chunks."""
    p = comm.size
    ring_all_gather(comm, list(range(p)), buf, owned=comm.rank)


def broadcast(comm: Comm, buf: np.ndarray, root: int = 0) -> None:
    """Pipelined chain from the root along rank order (bandwidth-optimal for large messages)."""
    p = comm.size
    if p == 1:
        return
    pos = (comm.rank - root) % p
    prev = (comm.rank - 1) % p if pos else None
    nxt = (comm.rank + 1) % p if pos < p - 1 else None
    step = max(1, PIPELINE_BYTES // buf.itemsize)
    for n, a in enumerate(range(0, len(buf), step)):
        comm.phase = f"broadcast piece {n + 1}"
        b = min(len(buf), a + step)
        if prev is not None:
            comm.recv(prev, _mv(buf[a:b]))
        if nxt is not None:
            comm.send(nxt, _mv(buf[a:b]))


def equal_blocks(n: int, p: int) -> list[tuple[int, int]]:
    """All-to-all moves equal blocks (NCCL's sendcount per peer); a remainder stays local."""
    b = n // p
    return [(j * b, (j + 1) * b) for j in range(p)]


def all_to_all(comm: Comm, send: np.ndarray, recv: np.ndarray) -> None:
    """Pairwise exchange: at step s, block r+s goes to rank r+s and block r arrives from r-s."""
    p, r = comm.size, comm.rank
    blocks = equal_blocks(len(send), p)
    tail = blocks[-1][1]
    recv[tail:] = send[tail:]
    a, b = blocks[r]
    recv[a:b] = send[a:b]
    for s in range(1, p):
        comm.phase = f"all-to-all step {s}/{p - 1}"
        dst, src = (r + s) % p, (r - s) % p
        da, db = blocks[dst]
        sa, sb = blocks[src]
        comm.sendrecv(dst, _mv(send[da:db]), src, _mv(recv[sa:sb]))
