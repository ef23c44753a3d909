"""Checks deploy/k8s: each manifest against the API's schema
(k8s_schema.py), and the manifests against each other, against the
image (deploy/container/Containerfile) and against troupe-kv's contract
(kv_env.txt):

    check_k8s.py K8S_DIR CONTAINERFILE KV_ENV [BUILT]

BUILT, if given, is the output of "kubectl kustomize K8S_DIR": it must
hold exactly the objects kustomization.yaml lists. Prints one "ok:" line
per group of checks; exits 1 with every problem found, 0 when none.
"""

import glob
import os
import re
import sys

import yaml

import containerfile
import k8s_schema

errors = []
_reported = [0]


def err(msg):
    errors.append(msg)


def done(msg):
    """ok: msg, if this group of checks found nothing."""
    if len(errors) == _reported[0]:
        print("ok: " + msg)
    else:
        print("not ok: " + msg)
    _reported[0] = len(errors)


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def subset(small, big):
    return all(big.get(k) == v for k, v in (small or {}).items())


def port_of(hostport):
    m = re.fullmatch(r"(.*):([0-9]+)", hostport or "")
    return (m.group(1), int(m.group(2))) if m else (None, None)


def quantity(q):
    """CPU in millicores or bytes, from a Kubernetes quantity."""
    q = str(q)
    units = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
             "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", q)
    if not m or (m.group(2) and m.group(2) not in units):
        raise ValueError("bad quantity %r" % q)
    return float(m.group(1)) * units.get(m.group(2), 1)


def main(argv):
    if len(argv) not in (4, 5):
        sys.stderr.write(__doc__)
        return 2
    k8s_dir, cfile, env_file = argv[1:4]
    built = argv[4] if len(argv) == 5 else None
    if not k8s_schema.available():
        print("FAIL: no kubernetes Python client (apt-get install python3-kubernetes;"
              " deploy/setup.sh does)")
        return 1

    contract = [l.strip() for l in open(env_file, encoding="utf-8")
                if l.strip() and not l.startswith("#")]

    # ---- every manifest: its fields, no namespace -------------------------
    objs = {}  # (kind, name) -> object
    files = {}  # file name -> [(kind, name)]
    for path in sorted(glob.glob(os.path.join(k8s_dir, "*.yaml"))):
        base = os.path.basename(path)
        if base == "kustomization.yaml":
            continue
        files[base] = []
        try:
            docs = load_all(path)
        except yaml.YAMLError as e:
            err("%s: not YAML: %s" % (base, str(e).replace("\n", " ")))
            continue
        for i, o in enumerate(docs):
            where = "%s[%d]" % (base, i)
            meta = o.get("metadata") or {}
            if not o.get("apiVersion") or not o.get("kind") or not meta.get("name"):
                err("%s: apiVersion, kind and metadata.name are required" % where)
                continue
            if "namespace" in meta:
                err("%s: metadata.namespace is set (the set is namespace-free)" % where)
            for e in k8s_schema.check(o, "%s %s/%s" % (base, o["kind"], meta["name"])):
                err(e)
            key = (o["kind"], meta["name"])
            if key in objs:
                err("%s: %s %s twice" % (where, *key))
            objs[key] = o
            files[base].append(key)
    done("%d objects in %d files, each against the schema of the Kubernetes"
         " Python client %s" % (len(objs), len(files), k8s_schema.version()))

    # ---- kustomization.yaml -----------------------------------------------
    kz = load_all(os.path.join(k8s_dir, "kustomization.yaml"))[0]
    if kz.get("kind") != "Kustomization":
        err("kustomization.yaml: kind is not Kustomization")
    if "namespace" in kz:
        err("kustomization.yaml: a namespace is set (the set is namespace-free)")
    listed = kz.get("resources") or []
    for r in listed:
        if r not in files:
            err("kustomization.yaml: %s is not a manifest here" % r)
    for f in files:
        if f.endswith(".example.yaml"):
            if f in listed:
                err("kustomization.yaml lists the example %s" % f)
        elif f not in listed:
            err("kustomization.yaml does not list %s" % f)
    done("kustomization.yaml lists every manifest but the examples")

    def one(kind):
        found = [o for (k, _), o in objs.items() if k == kind]
        if len(found) != 1:
            err("%d %s objects, one expected" % (len(found), kind))
            return {}
        return found[0]

    sts = one("StatefulSet")
    pdb = one("PodDisruptionBudget")
    secret = one("Secret")
    services = {n: o for (k, n), o in objs.items() if k == "Service"}
    if not sts:
        return report()
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    labels = spec["template"]["metadata"].get("labels") or {}
    if len(pod["containers"]) != 1:
        err("the pod has %d containers, one expected" % len(pod["containers"]))
    c = pod["containers"][0]
    cports = {p.get("name"): p["containerPort"] for p in c.get("ports") or []}
    env = c.get("env") or []
    envv = {e["name"]: e for e in env}

    # ---- the StatefulSet, its Services, its selectors ---------------------
    # The members troupe-kv counts a majority of (TROUPE_CLUSTER_SIZE,
    # default 3) are the StatefulSet's pods: the two must agree, and are
    # spelled out.
    size_s = (envv.get("TROUPE_CLUSTER_SIZE") or {}).get("value")
    size = int(size_s) if isinstance(size_s, str) and size_s.isdigit() else None
    if size is None:
        err("env TROUPE_CLUSTER_SIZE is not set to a number (a string in YAML)")
    elif spec.get("replicas") != size:
        err("StatefulSet: %r replicas, but TROUPE_CLUSTER_SIZE is %d"
            % (spec.get("replicas"), size))
    if size is not None and size < 3:
        err("TROUPE_CLUSTER_SIZE %d: fewer than 3 nodes survive no loss" % size)
    copies_s = (envv.get("TROUPE_REPLICAS") or {}).get("value") or "2"
    if size is not None and (not copies_s.isdigit() or not 2 <= int(copies_s) <= size):
        err("TROUPE_REPLICAS %r: not 2..TROUPE_CLUSTER_SIZE" % copies_s)
    if spec.get("podManagementPolicy") != "Parallel":
        err("StatefulSet: podManagementPolicy is not Parallel")
    if not subset(spec["selector"].get("matchLabels"), labels) or not spec["selector"].get("matchLabels"):
        err("StatefulSet: its selector does not match its pods' labels")
    headless = services.get(spec.get("serviceName"))
    if headless is None:
        err("StatefulSet: serviceName %r names no Service" % spec.get("serviceName"))
        headless = {"spec": {"ports": []}, "metadata": {"name": "?"}}
    elif headless["spec"].get("clusterIP") != "None":
        err("Service %s: not headless (clusterIP: None)" % spec["serviceName"])
    if headless["spec"].get("publishNotReadyAddresses") is not True:
        err("Service %s: publishNotReadyAddresses is not true" % headless["metadata"]["name"])
    for name, s in services.items():
        if not s["spec"].get("selector") or not subset(s["spec"]["selector"], labels):
            err("Service %s: its selector does not match the pods' labels" % name)
        for p in s["spec"].get("ports") or []:
            t = p.get("targetPort", p["port"])
            if (t not in cports) if isinstance(t, str) else (t not in cports.values()):
                err("Service %s: targetPort %r is no port of the container" % (name, t))
    hports = [p["port"] for p in headless["spec"]["ports"]]
    if hports != [7100] or cports.get("node") != 7100:
        err("the nodes' port: Service %s has %r, the container %r; 7100 expected"
            % (headless["metadata"]["name"], hports, cports.get("node")))
    clients = [s for n, s in services.items() if s is not headless]
    if len(clients) != 1 or [p["port"] for p in clients[0]["spec"]["ports"]] != [6379]:
        err("one client Service on port 6379 expected")
    if pdb:
        if not subset(pdb["spec"]["selector"].get("matchLabels"), labels):
            err("PodDisruptionBudget: its selector does not match the pods' labels")
        # A drain must leave a majority, and a copy of every key.
        mu = pdb["spec"].get("maxUnavailable")
        copies = int(copies_s) if copies_s.isdigit() else 2
        most = min(size - (size // 2 + 1), copies - 1) if size else 1
        if not isinstance(mu, int) or not 1 <= mu <= most:
            err("PodDisruptionBudget: maxUnavailable %r, not 1..%d (a majority of"
                " TROUPE_CLUSTER_SIZE and a copy of each key left)" % (mu, most))
    done("serviceName, selectors, target ports, the PodDisruptionBudget")

    # ---- the NetworkPolicy: the node port from the nodes only -------------
    netpol = one("NetworkPolicy")
    if netpol:
        np = netpol["spec"]
        if not np.get("podSelector", {}).get("matchLabels") or not subset(
                np["podSelector"]["matchLabels"], labels):
            err("NetworkPolicy: its podSelector does not match the pods' labels")
        opened = {}  # container port number -> the rules' from lists
        for rule in np.get("ingress") or []:
            for p in rule.get("ports") or []:
                n = p.get("port")
                n = cports.get(n) if isinstance(n, str) else n
                if n is None or n not in cports.values():
                    err("NetworkPolicy: port %r is no port of the container" % p.get("port"))
                opened.setdefault(n, []).append(rule.get("from"))
            if not rule.get("ports"):
                err("NetworkPolicy: a rule opens every port")
        for frm in opened.get(cports.get("node"), []):
            # Each source must be the troupe-kv pods: a podSelector of
            # their labels (an empty one is every pod), nothing else.
            if not frm or any(
                    set(f) != {"podSelector"}
                    or not f["podSelector"].get("matchLabels")
                    or not subset(f["podSelector"]["matchLabels"], labels)
                    for f in frm):
                err("NetworkPolicy: the node port is open to more than the troupe-kv pods")
        if cports.get("node") not in opened or cports.get("resp") not in opened:
            err("NetworkPolicy: the node port or the client port is not opened")
        done("the NetworkPolicy opens the node port to the nodes only, and the client port")

    # ---- the environment: the contract's names, consistent values ---------
    defined = set()
    for e in env:
        n = e["name"]
        for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", e.get("value") or ""):
            if ref not in defined:
                err("env %s uses $(%s) before it is defined" % (n, ref))
        defined.add(n)
        if n not in contract and not any(
                "$(%s)" % n in (x.get("value") or "") for x in env):
            err("env %s: not in troupe-kv's contract, and used by no other" % n)
    for n in ("TROUPE_COOKIE", "TROUPE_SEEDS"):
        if n in envv:
            err("env %s is set: the cookie comes from the Secret's file,"
                " the members from DNS" % n)
    fr = lambda n: ((envv.get(n) or {}).get("valueFrom") or {}).get("fieldRef", {}).get("fieldPath")
    if fr("TROUPE_NAME") != "metadata.name":
        err("TROUPE_NAME is not the pod's name (fieldRef metadata.name)")
    listen = (envv.get("TROUPE_LISTEN") or {}).get("value") or ""
    m = re.fullmatch(r"tcp://\$\((\w+)\):([0-9]+)", listen)
    if not m or fr(m.group(1)) != "status.podIP" or int(m.group(2)) != cports.get("node"):
        err("TROUPE_LISTEN %r is not tcp://$(POD_IP):<the node port> with POD_IP"
            " the pod's address" % listen)
    dns = (envv.get("TROUPE_DNS") or {}).get("value") or ""
    host, port = port_of(dns)
    hname = headless["metadata"]["name"]
    if port != cports.get("node") or not (
            host == hname or re.fullmatch(re.escape(hname) + r"\.[a-z0-9-]+\.svc\.cluster\.local", host or "")):
        err("TROUPE_DNS %r is not %s[.NS.svc.cluster.local]:<the node port>" % (dns, hname))
    rhost, rport = port_of((envv.get("TROUPE_RESP") or {}).get("value"))
    if rport != cports.get("resp"):
        err("TROUPE_RESP's port %r is not the container's resp port" % rport)
    ohost, oport = port_of((envv.get("TROUPE_OBSERVER") or {}).get("value"))
    if oport != 8080:
        err("TROUPE_OBSERVER's port %r is not 8080" % oport)
    client = (envv.get("TROUPE_CLIENT") or {}).get("value")
    if client is not None and not re.fullmatch(r"tcp://127\.0\.0\.1:[0-9]+", client):
        err("TROUPE_CLIENT %r: off loopback, and no port or NetworkPolicy for it" % client)
    done("env names from the contract; name, listen URL, DNS name, ports and"
         " the cluster size agree")

    # ---- the cookie: a file of the Secret ---------------------------------
    cfile_path = (envv.get("TROUPE_COOKIE_FILE") or {}).get("value") or ""
    mount = [vm for vm in c.get("volumeMounts") or []
             if cfile_path.startswith(vm["mountPath"].rstrip("/") + "/")]
    vols = {v["name"]: v for v in pod.get("volumes") or []}
    vol = vols.get(mount[0]["name"]) if mount else None
    if not vol or "secret" not in vol:
        err("TROUPE_COOKIE_FILE %r is in no mounted Secret" % cfile_path)
    else:
        sv = vol["secret"]
        rel = cfile_path[len(mount[0]["mountPath"].rstrip("/")) + 1:]
        keys = {i["path"]: i["key"] for i in sv.get("items") or []} or None
        key = keys.get(rel) if keys is not None else rel
        if not mount[0].get("readOnly"):
            err("the cookie's mount is not readOnly")
        if not secret or secret["metadata"]["name"] != sv.get("secretName"):
            err("the Secret %r is not the example's" % sv.get("secretName"))
        elif key not in (secret.get("stringData") or {}) and key not in (secret.get("data") or {}):
            err("the Secret has no key %r for %s" % (key, cfile_path))
        mode = sv.get("defaultMode", 0o644)
        if mode & 0o007 or not (mode & 0o040) or "fsGroup" not in (pod.get("securityContext") or {}):
            err("the cookie's mode %o: readable by the pod's fsGroup, by no one else" % mode)
    if secret and "REPLACE" not in str((secret.get("stringData") or {}).values()):
        err("the example Secret holds no placeholder")
    done("TROUPE_COOKIE_FILE is the key of the Secret %s, mounted read-only"
          % (secret.get("metadata", {}).get("name")))

    # ---- probes: /api/health, /api/ready for readiness, on the observer ---
    # Readiness asks whether the node serves (troupe-kv-health --ready);
    # startup and liveness only whether it runs, since a node that waits
    # for a majority must not be killed for it.
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = c.get(kind)
        if not p:
            if kind != "startupProbe":
                err("no %s" % kind)
            continue
        ready = kind == "readinessProbe"
        if "exec" in p:
            want = ["troupe-kv-health"] + (["--ready"] if ready else [])
            if p["exec"].get("command") != want:
                err("%s runs %r, not %s" % (kind, p["exec"].get("command"), " ".join(want)))
        elif "httpGet" in p:
            g = p["httpGet"]
            path = "/api/ready" if ready else "/api/health"
            if g.get("path") != path or g.get("port") not in (oport, "observer"):
                err("%s asks %r:%r, not %s on the observer's port"
                    % (kind, g.get("path"), g.get("port"), path))
            if ohost in ("127.0.0.1", "localhost", "::1"):
                err("%s: an HTTP probe cannot reach an observer on loopback" % kind)
        else:
            err("%s: neither exec nor httpGet" % kind)
    done("the probes ask the observer (%s:%s): /api/ready for readiness, /api/health else"
         % (ohost, oport))

    # ---- the image: its user, its health command --------------------------
    stages = containerfile.parse(cfile)
    final = stages[-1]
    user = (final.last("USER") or "").split(":")[0]
    psc = pod.get("securityContext") or {}
    csc = c.get("securityContext") or {}
    if not user.isdigit() or int(user) == 0:
        err("the image's USER %r is not a numeric non-root user" % user)
    elif psc.get("runAsUser", csc.get("runAsUser")) != int(user):
        err("runAsUser %r is not the image's USER %s" % (psc.get("runAsUser"), user))
    if not any("troupe-kv-health" in r for r in final.all("HEALTHCHECK")) or not any(
            "troupe-kv-health" in r for s in stages for r in s.all("RUN")):
        err("the image does not install and use troupe-kv-health")
    if ":" not in c["image"] or c["image"].endswith(":latest"):
        err("image %r has no fixed tag" % c["image"])
    done("the pods run as the image's user %s" % user)

    # ---- hardening and resources ------------------------------------------
    if not (psc.get("runAsNonRoot") or csc.get("runAsNonRoot")):
        err("runAsNonRoot is not set")
    if csc.get("readOnlyRootFilesystem") is not True:
        err("readOnlyRootFilesystem is not true")
    if csc.get("allowPrivilegeEscalation") is not False:
        err("allowPrivilegeEscalation is not false")
    if "ALL" not in ((csc.get("capabilities") or {}).get("drop") or []):
        err("capabilities: ALL is not dropped")
    if (csc.get("capabilities") or {}).get("add"):
        err("capabilities are added")
    sp = csc.get("seccompProfile") or psc.get("seccompProfile") or {}
    if sp.get("type") != "RuntimeDefault":
        err("seccompProfile is not RuntimeDefault")
    if not pod.get("terminationGracePeriodSeconds"):
        err("no terminationGracePeriodSeconds")
    res = c.get("resources") or {}
    for r in ("cpu", "memory"):
        req = (res.get("requests") or {}).get(r)
        lim = (res.get("limits") or {}).get(r)
        if req is None or lim is None:
            err("resources: no request or no limit for %s" % r)
        elif quantity(req) > quantity(lim):
            err("resources: the %s request %s is above its limit %s" % (r, req, lim))
    done("securityContext, grace period, requests and limits")

    # ---- what kustomize builds --------------------------------------------
    if built:
        got = sorted((o["kind"], o["metadata"]["name"]) for o in load_all(built))
        want = sorted(k for f in listed for k in files.get(f, []))
        if got != want:
            err("kubectl kustomize built %r, the files list %r" % (got, want))
        done("kubectl kustomize builds the %d objects listed" % len(got))
    return report()


def report():
    for e in errors:
        print("FAIL: %s" % e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
