"""The live emulated fabric: Docker workers, OVS switches, shaped long-haul links, the delay line,
the controller process, bring-up, live changes and cleanup."""
