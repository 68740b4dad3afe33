"""Topology files: physics, validation messages, shipped files."""


import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.locations import TOPOS
from twin.errors import InputError
from twin.spec.topology import (
    FIBER_US_PER_KM,
    great_circle_km,
    load_topology,
    parse_topology,
    single_site,
)


def base(**over):
    doc = {
        "name": "t",
        "scale": {"bandwidth": 0.001},
        "sites": [
            {"name": "beijing", "lat": 39.904, "lon": 116.407, "workers": 2},
            {"name": "shanghai", "lat": 31.230, "lon": 121.474, "workers": 2},
        ],
        "links": [{"a": "beijing", "b": "shanghai", "rate": "400Gbit"}],
    }
    doc.update(over)
    return doc


def problems(doc) -> list[str]:
    with pytest.raises(InputError) as exc:
        parse_topology(doc, "f.yaml")
    return exc.value.problems


def test_great_circle_beijing_shanghai():
    # Published great-circle distance Beijing-Shanghai is ~1,067 km.
    assert great_circle_km(39.904, 116.407, 31.230, 121.474) == pytest.approx(1067, abs=10)


def test_delay_from_distance_uses_route_factor_and_fiber_speed():
    topo = parse_topology(base())
    link = topo.links[0]
    km = great_circle_km(39.904, 116.407, 31.230, 121.474) * 1.3
    assert topo.link_distance_km(link) == pytest.approx(km)
    assert topo.link_delay(link) == pytest.approx(km * FIBER_US_PER_KM * 1e-6)


def test_explicit_distance_and_delay_win():
    doc = base(links=[{"a": "beijing", "b": "shanghai", "rate": "100Gbit", "distance_km": 2000}])
    topo = parse_topology(doc)
    assert topo.link_delay(topo.links[0]) == pytest.approx(9.8e-3)
    doc["links"][0]["delay"] = "3ms"
    assert parse_topology(doc).link_delay(parse_topology(doc).links[0]) == pytest.approx(3e-3)


def test_queue_defaults_to_bdp_of_the_emulated_link():
    doc = base(links=[{"a": "beijing", "b": "shanghai", "rate": "400Gbit", "distance_km": 2000}])
    topo = parse_topology(doc)
    # 400 Mbit/s emulated x 19.6 ms RTT / 8 = 980 KB
    assert topo.link_queue_bytes(topo.links[0]) == pytest.approx(980_000, rel=0.01)


def test_unknown_site_named_with_file_and_field():
    doc = base(links=[{"a": "beijing", "b": "paris", "rate": "1Gbit"}])
    assert problems(doc) == ["f.yaml: links[0:beijing-paris].b: unknown site 'paris'"]


def test_duplicate_site_names():
    doc = base()
    doc["sites"].append(dict(doc["sites"][0]))
    assert any("duplicate site name 'beijing'" in p for p in problems(doc))


@pytest.mark.parametrize("rate", ["0Gbit", "-5Mbit", 0])
def test_zero_or_negative_rate(rate):
    doc = base(links=[{"a": "beijing", "b": "shanghai", "rate": rate}])
    (p,) = problems(doc)
    assert p.startswith("f.yaml: links[0:beijing-shanghai].rate:")


def test_disconnected_sites():
    doc = base(links=[])
    doc["sites"].append({"name": "wuhan", "lat": 30.6, "lon": 114.3})
    doc["links"] = [{"a": "beijing", "b": "shanghai", "rate": "1Gbit"}]
    (p,) = problems(doc)
    assert "disconnected" in p and "wuhan" in p


def test_name_too_long_for_interface():
    doc = base()
    doc["sites"][0]["name"] = "shijiazhuang"
    doc["links"][0]["a"] = "shijiazhuang"
    (p,) = problems(doc)
    assert "sites[0:shijiazhuang].name" in p and "15 characters" in p


@pytest.mark.parametrize("field,value,fragment", [
    ("lat", 95, "lat"), ("lon", -200, "lon"), ("workers", 0, "workers"),
    ("image", "Bad Image!", "image"), ("colour", "red", "unknown field"),
])
def test_site_field_errors(field, value, fragment):
    doc = base()
    doc["sites"][1][field] = value
    ps = problems(doc)
    assert len(ps) == 1 and ps[0].startswith("f.yaml: sites[1:shanghai].") and fragment in ps[0]


def test_every_problem_reported_at_once():
    doc = base(links=[{"a": "x", "b": "y", "rate": "1Gbit"}])
    doc["sites"][0]["lat"] = 100
    assert len(problems(doc)) >= 1
    doc = base(links=[{"a": "x", "b": "y", "rate": "1Gbit"}])
    assert len(problems(doc)) == 2


def test_yaml_syntax_error_names_line(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("name: x\nsites: [\n  {name: a\n")
    with pytest.raises(InputError) as exc:
        load_topology(f)
    (p,) = exc.value.problems
    assert p.startswith(f"{f}: line ") and "YAML" in p


def test_missing_file():
    with pytest.raises(InputError) as exc:
        load_topology("/nonexistent/topo.yaml")
    assert "cannot read file" in exc.value.problems[0]


@pytest.mark.parametrize("name", ["ci-2site", "fntf-4site", "fntf-40city"])
def test_shipped_topologies_are_valid(name):
    topo = load_topology(TOPOS / f"{name}.yaml")
    assert topo.name == name


def test_shipped_topology_scales():
    ci = load_topology(TOPOS / "ci-2site.yaml")
    assert len(ci.sites) == 2 and all(s.workers == 2 for s in ci.sites)
    assert 900 <= ci.span_km() <= 1200
    four = load_topology(TOPOS / "fntf-4site.yaml")
    assert len(four.sites) == 4 and four.span_km() >= 1800
    forty = load_topology(TOPOS / "fntf-40city.yaml")
    assert len(forty.sites) == 40 and forty.span_km() > 2000
    assert sum(s.workers for s in forty.sites) >= 40


def test_single_site_keeps_worker_count_and_drops_wan():
    topo = load_topology(TOPOS / "fntf-4site.yaml")
    one = single_site(topo)
    assert len(one.sites) == 1 and one.links == []
    assert one.sites[0].workers == sum(s.workers for s in topo.sites)
    parse_topology(one.model_dump())  # still a valid topology


scalars = st.one_of(st.none(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.booleans())
values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=3),
                                                    st.dictionaries(st.text(max_size=8), c, max_size=3)),
                      max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from([("name",), ("scale", "bandwidth"), ("sites", 0, "lat"), ("sites", 0, "name"),
                             ("sites", 1, "workers"), ("sites", 0, "fabric"), ("links", 0, "rate"),
                             ("links", 0, "a"), ("links", 0, "loss"), ("links", 0, "queue"),
                             ("links", 0, "jitter"), ("links",), ("sites",)]),
       value=values)
def test_fuzzed_documents_fail_with_lines_never_tracebacks(path, value):
    doc = base()
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        parse_topology(yaml.safe_load(yaml.safe_dump(doc)), "fuzz.yaml")
    except InputError as exc:
        assert exc.problems and all(p.startswith("fuzz.yaml: ") and "\n" not in p for p in exc.problems)


@pytest.mark.parametrize("mtu", [576, 9217, "big"])
def test_mtu_out_of_range_is_one_line_naming_the_field(mtu):
    (p,) = problems(base(mtu=mtu))
    assert p.startswith("f.yaml: mtu:")


def test_jumbo_default_and_what_tcp_carries():
    topo = parse_topology(base(), "f.yaml")
    assert topo.mtu == 9000
    assert topo.tcp_payload_share() == pytest.approx(8948 / 9014)
    assert parse_topology(base(mtu=1500), "f.yaml").tcp_payload_share() == pytest.approx(1448 / 1514)
    # the smallest default queue is 64 full frames of the link's MTU
    short = base(links=[{"a": "beijing", "b": "shanghai", "rate": "1Gbit", "delay": "10us"}])
    assert parse_topology(short, "f.yaml").link_queue_bytes(parse_topology(short, "f.yaml").links[0]) \
        == 64 * 9014


def test_a_port_both_failover_protected_and_replicated_is_refused():
    doc = base(reservations=[{"name": "job", "a": "beijing", "b": "shanghai", "rate": "10Gbit",
                              "udp_ports": [7100], "replicated_udp_ports": [7100, 7101]}])
    assert problems(doc) == ["f.yaml: reservations[0:job].replicated_udp_ports: [7100] also in "
                             "udp_ports; a port is either protected by failover or sent 1+1"]


# ---- limits of a topology file (docs/topology.md, "Limits of input files") ------------------

from twin.spec.topology import (  # noqa: E402
    MAX_LINKS,
    MAX_PORTS,
    MAX_RESERVATIONS,
    MAX_SITES,
    MAX_WORKERS,
)


def sites(n, workers=1):
    return [{"name": f"s{i}", "lat": (i % 170) - 85, "lon": (i % 350) - 175, "workers": workers}
            for i in range(n)]


def chain(n, **link):
    return [dict({"a": f"s{i}", "b": f"s{i + 1}", "rate": "100Gbit"}, **link) for i in range(n - 1)]


def test_the_site_number_is_one_byte_of_the_addresses():
    assert parse_topology(base(sites=sites(MAX_SITES), links=chain(MAX_SITES)))
    assert problems(base(sites=sites(MAX_SITES + 1), links=chain(MAX_SITES + 1))) == [
        "f.yaml: sites: 256 sites; at most 255 (site i's workers are 10.i.0.k: i is one byte)"]


def test_workers_in_all_are_limited():
    doc = base(sites=sites(17, workers=64), links=chain(17))
    assert 17 * 64 > MAX_WORKERS
    assert problems(doc) == ["f.yaml: sites: 1088 workers in all; at most 1024 (each is a "
                             "container; for larger fabrics use 'twin model')"]


def test_links_reservations_and_ports_are_limited():
    doc = base(sites=sites(60), links=[{"a": f"s{i}", "b": f"s{j}", "rate": "1Gbit"}
                                       for i in range(60) for j in range(i + 1, 60)][:MAX_LINKS + 1])
    assert problems(doc) == ["f.yaml: links: 1025 links; at most 1024 (each is two switch ports "
                             "and a delay line)"]
    res = [{"name": f"r{i}", "a": "beijing", "b": "shanghai", "rate": "1Gbit"}
           for i in range(MAX_RESERVATIONS + 1)]
    assert problems(base(reservations=res)) == [
        "f.yaml: reservations: 65 reservations; at most 64 (each is flows on every switch of two "
        "paths)"]
    ports = {"name": "job", "a": "beijing", "b": "shanghai", "rate": "1Gbit",
             "udp_ports": list(range(7000, 7000 + MAX_PORTS + 1))}
    assert problems(base(reservations=[ports])) == [
        "f.yaml: reservations[0:job].udp_ports: 65 ports; at most 64 (each is a flow match on "
        "every switch of the path)"]


@pytest.mark.parametrize("name", ["../../etc/x", "a b", "", "x" * 101, "-x"])
def test_a_topology_name_must_be_usable_in_a_file_name(name):
    (p,) = problems(base(name=name))
    assert p.startswith("f.yaml: name: ")


@pytest.mark.parametrize("link,fragment", [
    ({"rate": "1e999Gbit"}, "rate: rate '1e999Gbit' is above 1000Tbit"),
    ({"rate": "1e-7bit"}, "rate: rate '1e-7bit' is below 1Kbit"),
    ({"rate": ".nan"}, "rate: cannot read rate '.nan'"),
    ({"delay": "2s"}, "delay: '2s' is longer than 1 s"),
    ({"delay": "2s", "jitter": "1.5s"}, "jitter: '1.5s' is longer than 1 s"),
    ({"distance_km": 40001}, "distance_km: Input should be less than or equal to 40000"),
    ({"distance_km": float("inf")}, "distance_km: Input should be a finite number"),
    ({"loss": float("nan")}, "loss: fraction nan is not a number"),
    ({"queue": "2G"}, "queue: must be at most 1G (1 GiB)"),
    ({"queue": 3000}, "queue: 3000 bytes hold fewer than two full-size frames of MTU 9000 "
                      "(18028 bytes)"),
    ({"rate": "10Mbit"}, "rate: 10Mbit at scale 0.001 is 10Kbit emulated; the twin needs at "
                         "least 100Kbit"),
])
def test_absurd_link_values_are_refused_with_the_reason(link, fragment):
    doc = base(links=[dict({"a": "beijing", "b": "shanghai", "rate": "400Gbit"}, **link)])
    ps = problems(doc)
    assert any(p.startswith("f.yaml: links[0:beijing-shanghai].") and fragment in p for p in ps), ps


def test_a_small_queue_is_fine_with_standard_frames():
    doc = base(mtu=1500, links=[{"a": "beijing", "b": "shanghai", "rate": "1Gbit", "queue": 3028}])
    assert parse_topology(doc).links[0].queue == 3028


@pytest.mark.parametrize("field,value,fragment", [
    ("lat", float("nan"), "Input should be a finite number"),
    ("cpus", 0.001, "Input should be greater than or equal to 0.01"),
    ("memory", "2048G", "must be at most 1T"),
    ("fabric", {"rate": "1Mbit"}, "fabric.rate: 1Mbit at scale 0.001 is 1Kbit emulated"),
    ("fabric", {"delay": "1e999s"}, "fabric.delay: time '1e999s' is above 86400s"),
])
def test_absurd_site_values_are_refused_with_the_reason(field, value, fragment):
    doc = base()
    doc["sites"][0][field] = value
    ps = problems(doc)
    assert any(p.startswith("f.yaml: sites[0:beijing].") and fragment in p for p in ps), ps


def test_a_scale_that_makes_a_rate_too_slow_is_refused_with_the_field():
    topo = parse_topology(base())
    with pytest.raises(ValueError) as exc:
        topo.with_scale("1/1e9")
    assert str(exc.value).startswith("sites[0:beijing].fabric.rate: 400Gbit at scale 1e-09 is "
                                     "400bit emulated; the twin needs at least 100Kbit")


def test_a_topology_at_every_limit_validates_in_seconds(tmp_path):
    import random
    import time
    rng = random.Random(1)
    lines = ["name: limits", "sites:"]
    lines += [f"  - {{name: s{i}, city: City {i}, lat: {rng.uniform(-80, 80):.3f}, "
              f"lon: {rng.uniform(-170, 170):.3f}, workers: 4}}" for i in range(MAX_SITES)]
    pairs = {(i, i + 1) for i in range(MAX_SITES - 1)}
    while len(pairs) < MAX_LINKS:
        a, b = sorted(rng.sample(range(MAX_SITES), 2))
        pairs.add((a, b))
    lines += ["links:"] + [f"  - {{a: s{a}, b: s{b}, rate: 100Gbit, loss: 0.01%}}" for a, b in pairs]
    f = tmp_path / "limits.yaml"
    f.write_text("\n".join(lines) + "\n")
    t0 = time.monotonic()
    topo = load_topology(f)
    assert time.monotonic() - t0 < 10  # ~1 s here
    assert (len(topo.sites), len(topo.links)) == (MAX_SITES, MAX_LINKS)
