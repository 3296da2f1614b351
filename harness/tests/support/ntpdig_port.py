# Runs ntpsec's own ntpdig query and report code against a server on any port:
# ntpdig itself always asks port 123, which would need privilege in a test.
# Usage: python3 ntpdig_port.py HOST PORT   (prints ntpdig's --json report line)
import runpy
import socket
import sys

host, port = sys.argv[1], int(sys.argv[2])
ntpdig = runpy.run_path("/usr/bin/ntpdig", run_name="ntpdig_as_library")
query, report = ntpdig["queryhost"], ntpdig["report"]
# The globals ntpdig's main block would have set from its command line.
query.__globals__.update(
    af=socket.AF_INET, gap=0.05, debug=0, keyid=None, keytype=None, passwd=None,
    credentials=None, server=host, adjusted=False,
    log=lambda m: sys.stderr.write("ntpdig: %s\n" % m),
)
packets = query(host, False, timeout=2, port=port)
if not packets:
    sys.stderr.write("ntpdig: no answer from %s:%d\n" % (host, port))
    sys.exit(1)
report(packets[0], True)
