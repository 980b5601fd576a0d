"""Where and how fast a run computes: the device, CPU threads and settings, several processes.

* :mod:`~ignite_mnist.runtime.devices`: the device and the autocast precision;
* :mod:`~ignite_mnist.runtime.threads`: the CPU thread count (``--threads auto`` measures);
* :mod:`~ignite_mnist.runtime.fast`: CPU speed settings (flushing denormals, channels-last, compile);
* :mod:`~ignite_mnist.runtime.distributed`: launching ranks and keeping them in step.
"""
