"""The generator's own health: peaks, merging across workers, warnings with advice."""

import os

from monitors.load_generator import GeneratorHealth, GeneratorSample, sample_generator


def test_a_real_sample_sees_this_process() -> None:
    """Sampling reads this process's fds (an opened file shows) and the machine's port range."""
    before = sample_generator()
    fds = [os.open(os.devnull, os.O_RDONLY) for _ in range(5)]
    try:
        after = sample_generator()
    finally:
        for fd in fds:
            os.close(fd)
    assert after.open_fds >= before.open_fds + 5
    assert after.port_range is None or after.port_range > 0


def test_far_from_limits_there_is_no_warning() -> None:
    """Normal use gives no warning."""
    health = GeneratorHealth()
    health.add(GeneratorSample(open_fds=50, fd_limit=1024, time_wait=100, port_range=28232))
    assert health.warnings() == []


def test_near_the_fd_limit_the_generator_is_blamed_with_advice() -> None:
    """Using 90 % of the fd limit is reported as the generator's limit, with what to do."""
    health = GeneratorHealth()
    health.add(GeneratorSample(open_fds=922, fd_limit=1024, time_wait=0, port_range=28232))
    assert health.warnings() == [
        "load generator used 922 of its 1024 file descriptors: raise `ulimit -n` or spread users over more --processes"
    ]


def test_time_wait_near_the_port_range_warns_of_port_exhaustion() -> None:
    """TIME_WAIT sockets near the ephemeral range warn that local ports may run out."""
    health = GeneratorHealth()
    health.add(GeneratorSample(open_fds=10, fd_limit=1024, time_wait=25000, port_range=28232))
    assert health.warnings()[0].startswith("25000 TCP sockets in TIME_WAIT against 28232 ephemeral ports")


def test_workers_merge_into_peaks() -> None:
    """Across processes the peaks are kept and the tightest fd limit wins."""
    a = GeneratorHealth(peak_open_fds=10, fd_limit=4096, peak_time_wait=5, port_range=100, samples=2)
    b = GeneratorHealth(peak_open_fds=30, fd_limit=1024, peak_time_wait=2, port_range=100, samples=3)
    merged = a.merged(b)
    assert (merged.peak_open_fds, merged.fd_limit, merged.peak_time_wait, merged.samples) == (30, 1024, 5, 5)
    assert GeneratorHealth.from_dict(merged.to_dict()) == merged
