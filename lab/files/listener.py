"""Lab listener: accepts TCP connections and echoes UDP datagrams on the given ports,
on every address of the box, IPv4 and IPv6 (UDP: but those of --skip, where another server
answers). Usage: listener.py --tcp 25,80 --udp 53 [--skip 203.0.113.54]"""
import argparse
import subprocess
import socket
import threading


def tcp(port):
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("::", port))
    sock.listen(64)
    while True:
        conn, dummy = sock.accept()
        try:
            conn.sendall(b"warden-lab\n")
        except OSError:
            pass
        conn.close()


def addresses():
    """Every address of the box (a reply must come from the address that was asked)."""
    out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields[2] in ("inet", "inet6") and not fields[3].startswith("fe80"):
            yield (socket.AF_INET if fields[2] == "inet" else socket.AF_INET6), fields[3].split("/")[0]


def udp(port, family, address):
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((address, port))
    while True:
        data, peer = sock.recvfrom(2048)
        try:
            sock.sendto(data, peer)
        except OSError:
            pass  # the host's own firewall refused the answer (EPERM): keep serving


def ports(text):
    return [int(p) for p in text.split(",") if p]


parser = argparse.ArgumentParser()
parser.add_argument("--tcp", type=ports, default=[])
parser.add_argument("--udp", type=ports, default=[])
parser.add_argument("--skip", action="append", default=[])
args = parser.parse_args()
threads = [threading.Thread(target=tcp, args=(p,), daemon=True) for p in args.tcp]
threads += [threading.Thread(target=udp, args=(p, f, a), daemon=True) for p in args.udp for f, a in addresses() if a not in args.skip]
for t in threads:
    t.start()
threading.Event().wait()  # serve until stopped (also when this box listens on nothing)
