"""Where results end: CSV rows, NCCL-tests tables, plots, topology maps and campaign reports."""
