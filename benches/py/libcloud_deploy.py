#!/usr/bin/env python3
"""Deploy N VMs with Apache Libcloud the way its users do, for the peer comparison of
the intercloud deploy benchmark (benches/src/bin/deploy_bench.rs spawns this script).

Modes:
  loop   -- driver.create_node() N times in a loop, then driver.wait_until_running(nodes)
  pool10 -- the same creates from a 10-thread pool (Terraform's default parallelism),
            one driver per thread (a libcloud connection is not thread-safe), then
            wait_until_running(nodes)

The simulator runs `time_scale` wall seconds per simulated second; every sleep
Libcloud makes (async-job polling, wait_until_running's period) is scaled by the same
factor so the run is the real-time run, compressed. wall_s is reported in wall
seconds; the caller divides by time_scale.

Simulator gaps bridged here, and only these: the simulator does not implement
CloudStack's listPortForwardingRules / listIpForwardingRules nor EC2's
DescribeAddresses, which Libcloud's list_nodes calls on every poll; their error
answers are turned into empty lists. The calls still reach the simulator and are
counted. EC2 is signed with SigV4 (signature_version="4"), as for any non-AWS endpoint.

Prints one JSON object on stdout.
"""
import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from libcloud.compute.base import NodeImage, NodeSize
from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider

UNSUPPORTED_BY_SIM = {"listPortForwardingRules", "listIpForwardingRules"}


def scale_sleeps(scale):
    real_sleep = time.sleep
    time.sleep = lambda s: real_sleep(max(0.0, s) * scale)


def make_driver(a):
    host, port = a.host, a.port
    if a.middleware == "cloudstack":
        cls = get_driver(Provider.CLOUDSTACK)
        drv = cls(key=a.key, secret=a.secret, host=host, port=port, path=a.path, secure=False)
        sync = drv._sync_request

        def tolerant(command, *args, **kwargs):
            try:
                return sync(command, *args, **kwargs)
            except Exception:
                if command in UNSUPPORTED_BY_SIM:
                    return {}
                raise

        drv._sync_request = tolerant
        return drv
    cls = get_driver(Provider.EC2)
    drv = cls(
        a.key, a.secret, region=a.region, host=host, port=port, secure=False, signature_version="4"
    )
    describe_addresses = drv.ex_describe_addresses

    def tolerant_addresses(nodes):
        try:
            return describe_addresses(nodes)
        except Exception:
            return {node.id: [] for node in nodes}

    drv.ex_describe_addresses = tolerant_addresses
    return drv


class Catalog:
    """What users look up once before creating: size, image, zone."""

    def __init__(self, drv, a):
        if a.middleware == "cloudstack":
            self.size = next(s for s in drv.list_sizes() if s.name == a.offering)
            self.image = next(i for i in drv.list_images() if i.name == a.image)
            self.location = next(l for l in drv.list_locations() if l.name == a.zone)
        else:
            self.size = NodeSize(a.offering, a.offering, 0, 0, 0, 0, drv)
            self.image = NodeImage(a.image, a.image, drv)
            self.location = None


def create(drv, cat, name):
    kwargs = {"name": name, "size": cat.size, "image": cat.image}
    if cat.location is not None:
        kwargs["location"] = cat.location
    return drv.create_node(**kwargs)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--middleware", choices=["cloudstack", "ec2"], required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/client/api")
    p.add_argument("--key", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--region", default="")
    p.add_argument("--zone", default="")
    p.add_argument("--offering", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--mode", choices=["loop", "pool10"], required=True)
    p.add_argument("--time-scale", type=float, default=1.0)
    p.add_argument("--timeout", type=float, default=3600.0, help="simulated seconds")
    a = p.parse_args()
    scale_sleeps(a.time_scale)

    drv = make_driver(a)
    start = time.monotonic()
    cat = Catalog(drv, a)
    names = [f"lc-{a.mode}-{i}" for i in range(a.count)]
    errors = []
    nodes = []
    if a.mode == "loop":
        for n in names:
            try:
                nodes.append(create(drv, cat, n))
            except Exception as e:  # a failed create is what the user sees; count it
                errors.append(f"{type(e).__name__}: {e}"[:200])
    else:
        local = threading.local()

        def one(n):
            if not hasattr(local, "drv"):
                local.drv = make_driver(a)
            try:
                return create(local.drv, cat, n)
            except Exception as e:
                errors.append(f"{type(e).__name__}: {e}"[:200])
                return None

        with ThreadPoolExecutor(max_workers=10) as pool:
            nodes = [n for n in pool.map(one, names) if n is not None]
    created_s = time.monotonic() - start
    running = 0
    try:
        ready = drv.wait_until_running(
            nodes, wait_period=5, timeout=a.timeout * a.time_scale, ssh_interface="private_ips"
        )
        running = len(ready)
    except Exception as e:
        errors.append(f"wait_until_running: {type(e).__name__}: {e}"[:200])
    wall = time.monotonic() - start
    json.dump(
        {
            "wall_s": wall,
            "created_s": created_s,
            "created": len(nodes),
            "running": running,
            "errors": len(errors),
            "first_errors": errors[:3],
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
