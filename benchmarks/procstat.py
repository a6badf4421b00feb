"""Reading a process's CPU time from /proc (Linux), shared by the benchmarks."""

import os
from pathlib import Path


def process_cpu_seconds(pid):
    """User + system CPU seconds used so far by process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
