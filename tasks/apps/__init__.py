"""``apps.*``: our applications (STACK.md section 9) on the cluster."""
