"""Delete every instance of a run and know it: the one place that decides "deleted".

Deleted means confirmed: the API answered 404 for the instance after its DELETE, or a lookup of
the run's tag succeeded and found nothing more. A lookup that fails proves nothing, so the
outcome is then *unconfirmed*, and the caller keeps the guards (lease token, firewall) that still
protect whatever may be running. Used by every run (1..N nodes) and by `launcher down`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from launcher.errors import one_line
from provision.cloud import Cloud, InstanceInfo
from provision.errors import ProvisionError

LOOKUP_ATTEMPTS = 3        # a failed tag lookup is tried again this often (each with retries)
LABEL_GRACE_S = 60.0       # how long an instance whose create did not return may take to show
LABEL_POLL_S = 3.0
DELETE_BOUND_S = 180.0     # LinodeCloud.delete_timeout_s: said when someone asks what is left


@dataclass
class Teardown:
    """What the delete of one run found and did."""

    instances: dict[int, InstanceInfo] = field(default_factory=dict)  # every one we knew of
    errors: dict[int, str] = field(default_factory=dict)   # id -> why not confirmed deleted
    blind_spots: list[str] = field(default_factory=list)   # lookups that failed

    @property
    def confirmed(self) -> bool:
        return not self.errors and not self.blind_spots

    def deleted(self, instance_id: int) -> bool:
        return instance_id in self.instances and instance_id not in self.errors


def tear_down(cloud: Cloud, tag: str, known: dict[int, InstanceInfo],
              uncertain_labels: Sequence[str] = (), *,
              label_grace_s: float = LABEL_GRACE_S,
              status: Callable[[str], None] = lambda text: None,
              sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic) -> Teardown:
    """Find (known ∪ tagged ∪ late labels) and delete them all in parallel, each confirmed.
    `status(text)` is told what is happening, for the user and for a second Ctrl-C."""
    out = Teardown(instances=dict(known))
    status("looking up the run's instances by tag")
    for info in _tagged(cloud, tag, out):
        out.instances.setdefault(info.id, info)
    if uncertain_labels:
        for info in _late(cloud, uncertain_labels, out, label_grace_s, status, sleep, clock):
            out.instances.setdefault(info.id, info)
    targets = sorted(out.instances)
    if targets:
        status(f"deleting {', '.join(map(str, targets))}, up to {DELETE_BOUND_S:.0f} s")
        out.errors.update(_delete_all(cloud, targets))
    return out


def _tagged(cloud: Cloud, tag: str, out: Teardown) -> list[InstanceInfo]:
    last = ""
    for _ in range(LOOKUP_ATTEMPTS):
        try:
            return cloud.list_by_tag(tag)
        except ProvisionError as exc:
            last = one_line(exc)
    out.blind_spots.append(f"could not list the instances tagged {tag}: {last}")
    return []


def _late(cloud: Cloud, labels: Sequence[str], out: Teardown, grace_s: float,
          status: Callable[[str], None], sleep: Callable[[float], None],
          clock: Callable[[], float]) -> list[InstanceInfo]:
    """A create that did not return cleanly may show up a moment later: look its label up until
    the API has had time to record it, counting down."""
    found: dict[str, InstanceInfo] = {}
    failing: dict[str, str] = {}
    deadline = clock() + grace_s
    while True:
        for label in labels:
            if label in found:
                continue
            try:
                info = cloud.find_by_label(label)
                failing.pop(label, None)
            except ProvisionError as exc:
                failing[label] = one_line(exc)
                continue
            if info is not None:
                found[label] = info
        left = deadline - clock()
        if len(found) == len(labels) or left <= 0:
            break
        missing = ", ".join(sorted(set(labels) - set(found)))
        status(f"a create did not answer: watching for {missing} to appear, {left:.0f} s left")
        sleep(min(LABEL_POLL_S, max(0.0, left)))
    for label, why in failing.items():
        out.blind_spots.append(f"could not look up {label}: {why}")
    return list(found.values())


def _delete_all(cloud: Cloud, ids: Sequence[int]) -> dict[int, str]:
    """Each delete in its own thread (N nodes take one delete's time); id -> error."""
    errors: dict[int, str] = {}
    lock = threading.Lock()

    def delete(instance_id: int) -> None:
        try:
            cloud.delete(instance_id)
        except BaseException as exc:  # noqa: BLE001 - every other node is still deleted
            with lock:
                errors[instance_id] = one_line(exc)

    threads = [threading.Thread(target=delete, args=(i,), name=f"juliafarm-delete-{i}",
                                daemon=True) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
