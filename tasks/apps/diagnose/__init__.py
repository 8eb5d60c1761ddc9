"""``apps.diagnose [NAME]``: why a pod of ours is not Ready, in plain words, then the
evidence (STACK.md section 9: the original services sat in CrashLoopBackOff and nobody
knew why).

Pure functions do the work: the JSON the API returns goes in, findings come out.

- :mod:`.pods`: the pods and events as plain values (containers' waiting reason, last
  termination, restarts, probes, limits);
- :mod:`.refs`: the Secrets, ConfigMaps, keys, pull Secrets and PVCs a pod needs that
  do not resolve;
- :mod:`.logs`: a previous container's last log lines, error lines first;
- :mod:`.causes`: one likely cause per pod, with the evidence behind it;
- :mod:`.report`: one block per pod (cause line first), or JSON;
- :mod:`.reads`: the kubectl reads (one batch, then one batch of logs for the containers
  that restarted) and the task's run.
"""
