"""Running `python -m pynet ...` as a user would, and the kernel peer it talks to."""
import os
import subprocess
import sys

from pynet.netns import unique_name


def pynet(*args, run_dir, timeout=60, check=None, **kwargs):
    """Run the pynet command; returns CompletedProcess (text). check: expected exit status."""
    env = dict(os.environ, PYNET_RUN_DIR=str(run_dir))
    p = subprocess.run([sys.executable, "-m", "pynet", *map(str, args)], capture_output=True,
                       text=True, timeout=timeout, env=env, **kwargs)
    if check is not None:
        assert p.returncode == check, (p.returncode, p.stdout, p.stderr)
    return p


def pynet_bg(*args, run_dir, **kwargs):
    env = dict(os.environ, PYNET_RUN_DIR=str(run_dir))
    return subprocess.Popen([sys.executable, "-m", "pynet", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def netns_names():
    from pyroute2 import netns
    return set(netns.listnetns())


class Topology:
    """`pynet netns up NAME` for the length of a `with`, `netns down` after."""

    def __init__(self, run_dir, veth=False, cidr="198.18.7.0/24"):
        self.run_dir = run_dir
        self.name = unique_name()
        self.veth = veth
        self.cidr = cidr
        self.kernel_addr = cidr.rsplit(".", 1)[0] + ".1"
        self.pynet_addr = cidr.rsplit(".", 1)[0] + ".2"

    def __enter__(self):
        args = ["netns", "up", self.name, "--cidr", self.cidr] + (["--veth"] if self.veth else [])
        pynet(*args, run_dir=self.run_dir, check=0)
        return self

    def __exit__(self, *exc):
        pynet("netns", "down", self.name, run_dir=self.run_dir)
        # whatever happened, nothing outlives the test
        if self.name in netns_names():
            from pyroute2 import netns
            netns.remove(self.name)

    def popen(self, args, **kwargs):
        return subprocess.Popen(["ip", "netns", "exec", self.name, *args], **kwargs)

    def run(self, args, **kwargs):
        return subprocess.run(["ip", "netns", "exec", self.name, *args], **kwargs)
