"""The lab: a real Debian 12 VM on this machine to run the tool against.

``inv lab.up`` builds a Debian bookworm base image once (debootstrap, cached under
``.lab/base/<recipe hash>/``), boots a VM from a qcow2 overlay with qemu (KVM when
usable, else TCG), waits for SSH on a port forwarded to 127.0.0.1 and writes
``.lab/inventory.yaml`` and ``.lab/known_hosts`` for it.

Modules, one concept each:

- :mod:`~tasks.labvm.paths`: where the lab keeps its files (``$STACK_LAB_DIR``).
- :mod:`~tasks.labvm.tools`: required host programs and running them.
- :mod:`~tasks.labvm.recipe`: what goes into the base image, and its hash.
- :mod:`~tasks.labvm.image`: building the base image (debootstrap, mkfs -d, qemu-img).
- :mod:`~tasks.labvm.seed`: per-VM identity and secrets, delivered through fw_cfg.
- :mod:`~tasks.labvm.qemu`: the accelerator choice and the qemu command line.
- :mod:`~tasks.labvm.net`: free ports and waiting for the SSH banner.
- :mod:`~tasks.labvm.vm`: one VM's state, start and stop.
- :mod:`~tasks.labvm.inventory_file`: the inventory and known_hosts written for the VMs.
- :mod:`~tasks.labvm.lab`: the operations behind ``lab.up/down/ssh``.
- :mod:`~tasks.labvm.status`: what ``lab.status`` shows.
"""
