// Validates rendered Kubernetes manifests offline, strictly:
//  1. kubernetes-models' schema validators: types, enums, required fields;
//  2. every field must exist in the Kubernetes API (the generated models of
//     @kubernetes/client-node list each type's fields), so a typo such as
//     `mountPropagaton` fails instead of being silently dropped by the API
//     server;
//  3. with --policy, what spfs's manifests promise (identity wiring,
//     propagation, who is privileged, probes, limits);
//  4. with --csi, what the CSI driver's manifests promise (k8s/csi): the
//     CSIDriver's fields, the node plugin and its sidecars unprivileged,
//     the mounter privileged with Bidirectional propagation and OnDelete,
//     and every app pod within the restricted Pod Security Standard.
//
//   node validate.mjs [--policy | --csi] FILE.yaml...   exit 0 when all are valid
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const args = process.argv.slice(2);
const policy = args[0] === "--policy";
const csi = args[0] === "--csi";
const files = policy || csi ? args.slice(1) : args;
const errors = [];

async function model(type) {
  try {
    const m = await import(`@kubernetes/client-node/dist/gen/models/${type}.js`);
    return m[type];
  } catch {
    return null;
  }
}

// Checks obj against the client-node type name, recursively.
async function strict(obj, type, where) {
  if (obj === null || obj === undefined) return;
  let m = /^Array<(.+)>$/.exec(type);
  if (m) {
    if (!Array.isArray(obj)) return errors.push(`${where}: expected a list`);
    for (let i = 0; i < obj.length; i++) await strict(obj[i], m[1], `${where}[${i}]`);
    return;
  }
  m = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (m) {
    if (typeof obj !== "object" || Array.isArray(obj)) return errors.push(`${where}: expected a map`);
    for (const [k, v] of Object.entries(obj)) await strict(v, m[1], `${where}.${k}`);
    return;
  }
  const cls = /^[A-Z]/.test(type) && type !== "IntOrString" && type !== "Date" ? await model(type) : null;
  if (!cls) return; // a scalar, IntOrString, Quantity as string, any
  if (typeof obj !== "object" || Array.isArray(obj)) return errors.push(`${where}: expected an object (${type})`);
  const fields = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(obj)) {
    if (!fields.has(k)) errors.push(`${where}: unknown field "${k}" in ${type}`);
    else await strict(v, fields.get(k), `${where}.${k}`);
  }
}

function clientType(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const v = version[0].toUpperCase() + version.slice(1);
  return `${v}${kind}`; // apps/v1 Deployment -> V1Deployment
}

async function schema(obj, where) {
  const [group, version] = obj.apiVersion.includes("/") ? obj.apiVersion.split("/") : ["", obj.apiVersion];
  const path = group ? `kubernetes-models/${group}/${version}/${obj.kind}` : `kubernetes-models/${version}/${obj.kind}`;
  let Cls;
  try {
    const mod = await import(path);
    Cls = mod[obj.kind];
  } catch {
    return errors.push(`${where}: unknown apiVersion/kind ${obj.apiVersion} ${obj.kind}`);
  }
  try {
    new Cls(obj).validate();
  } catch (e) {
    errors.push(`${where}: ${String(e.message).split("\n").slice(0, 3).join(" ")}`);
  }
}

function check(cond, where, msg) {
  if (!cond) errors.push(`${where}: ${msg}`);
}

function podPolicy(obj, all, where) {
  const tpl = obj.spec.template;
  const spec = tpl.spec;
  const containers = [...(spec.initContainers || []), ...spec.containers];
  const spfs = containers.find((c) => c.name === "spfs");
  const volumes = new Map((spec.volumes || []).map((v) => [v.name, v]));
  const identity = Boolean(spfs);
  if (identity) {
    check(tpl.metadata.labels?.["azure.workload.identity/use"] === "true", where,
      'pod label azure.workload.identity/use: "true" is missing (no token injected)');
    const sa = all.find((o) => o.kind === "ServiceAccount" && o.metadata.name === spec.serviceAccountName);
    check(sa, where, `service account ${spec.serviceAccountName} is not in the manifests`);
    check(sa?.metadata.annotations?.["azure.workload.identity/client-id"], where,
      "service account lacks azure.workload.identity/client-id");
    for (const ref of spfs.envFrom || [])
      if (ref.configMapRef)
        check(all.find((o) => o.kind === "ConfigMap" && o.metadata.name === ref.configMapRef.name),
          where, `config map ${ref.configMapRef.name} is not in the manifests`);
    check(spfs.securityContext?.privileged === true, where, "spfs must be privileged (FUSE, Bidirectional)");
    check(spfs.startupProbe?.httpGet?.path === "/mounted", where, "spfs needs a startup probe on /mounted");
    check(spfs.readinessProbe?.httpGet?.path === "/ready", where, "spfs needs a readiness probe on /ready");
    check(spfs.livenessProbe?.httpGet?.path === "/healthz", where, "spfs needs a liveness probe on /healthz");
    check(spfs.lifecycle?.preStop?.exec?.command?.[0] === "fusermount3", where, "spfs needs a preStop unmount");
    check(spfs.resources?.limits?.memory && spfs.resources?.requests?.memory, where, "spfs needs memory requests and limits");
    check(/(:[^/]+|@sha256:[0-9a-f]{64})$/.test(spfs.image || ""), where,
      `spfs's image "${spfs.image}" has no tag or digest (the kustomization's images: entry)`);
    // The webhook injects the Entra token into every container it is not
    // told to skip: only spfs may have it.
    const skip = (tpl.metadata.annotations?.["azure.workload.identity/skip-containers"] || "").split(";");
    for (const c of containers)
      if (c.name !== "spfs")
        check(skip.includes(c.name), where,
          `container ${c.name} is not in azure.workload.identity/skip-containers: it would get spfs's token`);
    const bidi = (spfs.volumeMounts || []).filter((m) => m.mountPropagation === "Bidirectional");
    check(bidi.length === 1, where, "spfs needs exactly one Bidirectional mount");
    // Mounted one level below the volume's root (the root stays a plain
    // directory after a crash), on a mode-000 bare mountpoint.
    const target = spfs.lifecycle?.preStop?.exec?.command?.slice(-1)[0] || "";
    const root = (bidi[0]?.mountPath || "").replace(/\/+$/, "");
    const script = [...(spfs.command || []), ...(spfs.args || [])].join(" ");
    check(root && target.startsWith(root + "/") && !target.slice(root.length + 1).includes("/"), where,
      `spfs must mount one level below its volume's root ${root}, not on ${target}`);
    check(script.includes(`mnt=${target}`) && /chmod 000 "\$mnt"/.test(script) && /spfs -f [^\n]*"\$mnt"/.test(script),
      where, `spfs's command must chmod 000 and mount ${target}`);
    for (const m of spfs.volumeMounts || []) {
      const v = volumes.get(m.name);
      if (v?.emptyDir && m.name.includes("cache"))
        check(spfs.resources?.requests?.["ephemeral-storage"], where,
          "spfs needs an ephemeral-storage request for its emptyDir cache");
    }
    if (obj.kind === "Deployment") {
      const init = (spec.initContainers || []).find((c) => c.name === "spfs");
      check(init?.restartPolicy === "Always", where, "the sidecar must be a native sidecar (restartPolicy: Always)");
    }
    if (obj.kind === "DaemonSet") {
      check(spec.priorityClassName === "system-node-critical", where,
        "the node DaemonSet needs priorityClassName: system-node-critical");
      check(obj.spec.updateStrategy?.type === "OnDelete", where,
        "the node DaemonSet needs updateStrategy OnDelete (an update unmounts every consumer)");
      for (const r of ["cpu", "memory"])
        check(spfs.resources?.requests?.[r] && spfs.resources?.requests?.[r] === spfs.resources?.limits?.[r], where,
          `the node DaemonSet's spfs needs ${r} requests equal to limits`);
    }
  }
  check(spec.automountServiceAccountToken === false, where, "automountServiceAccountToken must be false");
  for (const c of containers)
    for (const p of ["startupProbe", "readinessProbe", "livenessProbe"])
      if (c[p]) check(c[p].timeoutSeconds > 0, where, `${c.name}'s ${p} needs timeoutSeconds`);
  for (const c of containers) {
    if (c.name === "spfs") continue;
    // sh as PID 1 ignores SIGTERM: without a trap the pod waits out its
    // grace period and the sidecar gets the kubelet's 2 s minimum.
    const cmd = [...(c.command || []), ...(c.args || [])];
    if (cmd[0] === "sh" || cmd[0] === "/bin/sh")
      check(/trap [^\n]*TERM/.test(cmd.join(" ")), where, `${c.name} runs sh as PID 1 without trapping TERM`);
    check(!c.securityContext?.privileged, where, `${c.name} must not be privileged`);
    check(c.securityContext?.allowPrivilegeEscalation === false, where, `${c.name} must not escalate privileges`);
    for (const m of c.volumeMounts || []) {
      const v = volumes.get(m.name);
      check(v, where, `${c.name} mounts unknown volume ${m.name}`);
      if (v && (v.name === "sharepoint" || v.hostPath?.path?.startsWith("/var/lib/spfs"))) {
        check(m.mountPropagation === "HostToContainer", where, `${c.name} must see the mount with HostToContainer`);
        check(m.readOnly === true, where, `${c.name} must mount the library read-only`);
      }
    }
  }
  for (const v of spec.volumes || [])
    if (v.emptyDir && v.name.includes("cache"))
      check(v.emptyDir.sizeLimit, where, `cache volume ${v.name} needs a sizeLimit`);
}

// ---- the CSI driver (k8s/csi) -------------------------------------------

const CSI_AUDIENCE = "api://AzureADTokenExchange";

function csiDriverPolicy(obj, where) {
  const s = obj.spec || {};
  check(s.attachRequired === false, where, "attachRequired must be false (nothing to attach)");
  check(s.podInfoOnMount === true, where, "podInfoOnMount must be true (the identity is the pod's)");
  check(s.requiresRepublish === true, where, "requiresRepublish must be true (tokens are refreshed by republish)");
  for (const mode of ["Persistent", "Ephemeral"])
    check((s.volumeLifecycleModes || []).includes(mode), where, `volumeLifecycleModes lacks ${mode}`);
  check((s.tokenRequests || []).some((t) => t.audience === CSI_AUDIENCE), where,
    `tokenRequests needs the audience ${CSI_AUDIENCE}`);
}

function env(c, name) {
  return (c.env || []).find((e) => e.name === name);
}

function csiNodePolicy(obj, all, where) {
  const spec = obj.spec.template.spec;
  const driver = all.find((o) => o.kind === "CSIDriver")?.metadata.name;
  const byImage = (part) => spec.containers.find((c) => String(c.image).includes(part));
  const registrar = byImage("csi-node-driver-registrar");
  const probe = byImage("livenessprobe");
  const plugin = spec.containers.find((c) => (c.args || [])[0] === "node");
  check(plugin, where, "no container runs spfs-csi node");
  check(registrar, where, "node-driver-registrar is missing");
  check(probe, where, "the livenessprobe sidecar is missing");
  check(driver, where, "no CSIDriver in the manifests");
  const reg = (registrar?.args || []).find((a) => a.startsWith("--kubelet-registration-path="));
  check(reg === `--kubelet-registration-path=/var/lib/kubelet/plugins/${driver}/csi.sock`, where,
    `the registrar must register /var/lib/kubelet/plugins/${driver}/csi.sock`);
  check(env(plugin || {}, "CSI_ENDPOINT")?.value === "unix:///csi/csi.sock", where,
    "the plugin's CSI_ENDPOINT must be unix:///csi/csi.sock");
  check(env(plugin || {}, "NODE_NAME")?.valueFrom?.fieldRef?.fieldPath === "spec.nodeName", where,
    "the plugin's NODE_NAME must come from spec.nodeName");
  for (const c of spec.containers) {
    check(!c.securityContext?.privileged, where, `${c.name} must not be privileged (it mounts nothing)`);
    check(c.securityContext?.allowPrivilegeEscalation === false, where, `${c.name} must not escalate`);
    check(JSON.stringify(c.securityContext?.capabilities?.drop) === '["ALL"]', where,
      `${c.name} must drop every capability`);
    check(c.resources?.limits?.memory, where, `${c.name} needs a memory limit`);
  }
  check(plugin?.livenessProbe?.httpGet?.port === "healthz", where, "the plugin's liveness probe is the livenessprobe sidecar's");
  check(spec.priorityClassName === "system-node-critical", where, "the node plugin must be system-node-critical");
}

function csiMounterPolicy(obj, where) {
  const spec = obj.spec.template.spec;
  const [m] = spec.containers;
  check(obj.spec.updateStrategy?.type === "OnDelete", where,
    "the mounter must update OnDelete: replacing it interrupts every volume on the node");
  check(m?.securityContext?.privileged === true, where, "the mounter must be privileged (FUSE, Bidirectional)");
  const vols = new Map((spec.volumes || []).map((v) => [v.name, v]));
  const kubelet = (m?.volumeMounts || []).find((vm) => vols.get(vm.name)?.hostPath?.path === "/var/lib/kubelet");
  check(kubelet?.mountPropagation === "Bidirectional", where,
    "the mounter needs /var/lib/kubelet with Bidirectional propagation (its binds must reach the kubelet)");
  check(kubelet?.mountPath === "/var/lib/kubelet", where, "the mounter must see /var/lib/kubelet at the same path");
  check(m?.livenessProbe?.exec && m?.livenessProbe?.timeoutSeconds, where, "the mounter needs a liveness probe with a timeout");
  check(m?.resources?.limits?.memory && m?.resources?.requests?.memory, where, "the mounter needs memory requests and limits");
  check(spec.priorityClassName === "system-node-critical", where, "the mounter must be system-node-critical");
}

// The restricted Pod Security Standard (kubernetes.io/docs/concepts/
// security/pod-security-standards), as the admission controller checks it.
const RESTRICTED_VOLUMES = ["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
  "persistentVolumeClaim", "projected", "secret"];
const SAFE_SYSCTLS = ["kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
  "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
  "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
  "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"];

function restrictedPolicy(spec, where) {
  const pod = spec.securityContext || {};
  const containers = [...(spec.initContainers || []), ...(spec.containers || []),
    ...(spec.ephemeralContainers || [])];
  for (const f of ["hostNetwork", "hostPID", "hostIPC"])
    check(!spec[f], where, `restricted: ${f} is forbidden`);
  for (const v of spec.volumes || []) {
    const type = Object.keys(v).find((k) => k !== "name");
    check(RESTRICTED_VOLUMES.includes(type), where, `restricted: volume ${v.name} is ${type}`);
  }
  for (const s of pod.sysctls || [])
    check(SAFE_SYSCTLS.includes(s.name), where, `restricted: sysctl ${s.name}`);
  const podSeccomp = pod.seccompProfile?.type;
  for (const c of containers) {
    const sc = c.securityContext || {};
    const w = `${where} container ${c.name}`;
    check(!sc.privileged, w, "restricted: privileged");
    check(!sc.windowsOptions?.hostProcess && !pod.windowsOptions?.hostProcess, w, "restricted: hostProcess");
    check(sc.allowPrivilegeEscalation === false, w, "restricted: allowPrivilegeEscalation must be false");
    check(sc.runAsNonRoot === true || (pod.runAsNonRoot === true && sc.runAsNonRoot !== false), w,
      "restricted: runAsNonRoot must be true");
    check((sc.runAsUser ?? pod.runAsUser) !== 0, w, "restricted: runAsUser 0");
    const seccomp = sc.seccompProfile?.type ?? podSeccomp;
    check(seccomp === "RuntimeDefault" || seccomp === "Localhost", w,
      "restricted: seccompProfile must be RuntimeDefault or Localhost");
    check((sc.capabilities?.drop || []).includes("ALL"), w, "restricted: capabilities must drop ALL");
    for (const cap of sc.capabilities?.add || [])
      check(cap === "NET_BIND_SERVICE", w, `restricted: capability ${cap} added`);
    check(!sc.procMount || sc.procMount === "Default", w, "restricted: procMount");
    for (const p of c.ports || [])
      check(!p.hostPort, w, "restricted: hostPort");
    const apparmor = sc.appArmorProfile?.type ?? pod.appArmorProfile?.type;
    check(!apparmor || apparmor !== "Unconfined", w, "restricted: AppArmor Unconfined");
    const selinux = sc.seLinuxOptions ?? pod.seLinuxOptions;
    check(!selinux || (!selinux.user && !selinux.role), w, "restricted: SELinux user or role");
  }
}

// An app pod reading through the driver: restricted, the csi volume
// read-only, its attributes complete.
function csiAppPolicy(spec, all, where) {
  restrictedPolicy(spec, where);
  const driver = all.find((o) => o.kind === "CSIDriver")?.metadata.name ?? "spfs.csi.spfs-project.github.io";
  const ours = (spec.volumes || []).filter((v) => v.csi?.driver === driver || v.persistentVolumeClaim);
  check(ours.length, where, "the app has no spfs-csi volume");
  for (const v of ours) {
    if (v.csi) {
      check(v.csi.readOnly === true, where, `volume ${v.name}: readOnly: true (spfs volumes are read-only)`);
      for (const a of ["source", "clientID"])
        check(v.csi.volumeAttributes?.[a], where, `volume ${v.name}: attribute ${a} is required`);
    } else {
      check(v.persistentVolumeClaim.readOnly === true, where, `volume ${v.name}: the claim must be read-only`);
    }
    for (const c of spec.containers)
      for (const m of c.volumeMounts || [])
        if (m.name === v.name)
          check(m.readOnly === true, where, `${c.name} must mount ${v.name} read-only`);
  }
  check(spec.automountServiceAccountToken === false, where, "the app needs no API token");
}

// With SPFS_CSI_BIN, the built spfs-csi must accept the exact arguments
// the manifests give it (each command line is run with --help last, which
// stops it after parsing everything before).
function csiCommandLines(obj, where) {
  const bin = process.env.SPFS_CSI_BIN;
  if (!bin || !existsSync(bin)) return;
  for (const c of obj.spec.template.spec.containers) {
    const lines = [];
    const cmd = [...(c.command || []), ...(c.args || [])];
    const at = cmd.indexOf("spfs-csi");
    if (at >= 0) lines.push(cmd.slice(at + 1));
    const probe = c.livenessProbe?.exec?.command || [];
    if (probe[0] === "spfs-csi") lines.push(probe.slice(1));
    for (const args of lines) {
      try {
        execFileSync(bin, [...args, "--help"], { stdio: ["ignore", "ignore", "pipe"] });
      } catch (e) {
        errors.push(`${where}: ${c.name}: spfs-csi refuses ${JSON.stringify(args)}: ${String(e.stderr).trim()}`);
      }
    }
  }
}

function csiPolicy(obj, all, where) {
  if (obj.kind === "DaemonSet") csiCommandLines(obj, where);
  if (obj.kind === "CSIDriver") return csiDriverPolicy(obj, where);
  if (obj.kind === "DaemonSet" && obj.metadata.name === "spfs-csi-node") return csiNodePolicy(obj, all, where);
  if (obj.kind === "DaemonSet" && obj.metadata.name === "spfs-csi-mounter") return csiMounterPolicy(obj, where);
  if (obj.kind === "Deployment") return csiAppPolicy(obj.spec.template.spec, all, where);
  if (obj.kind === "Pod") return csiAppPolicy(obj.spec, all, where);
  if (obj.kind === "PersistentVolume" && obj.spec.csi) {
    check(JSON.stringify(obj.spec.accessModes) === '["ReadOnlyMany"]', where, "a library PV is ReadOnlyMany");
    for (const a of ["source", "clientID"])
      check(obj.spec.csi.volumeAttributes?.[a], where, `attribute ${a} is required`);
  }
  if (obj.kind === "Namespace" && obj.metadata.name !== "spfs-csi")
    check(obj.metadata.labels?.["pod-security.kubernetes.io/enforce"] === "restricted", where,
      "the apps' namespace must enforce the restricted standard");
}

const docs = [];
for (const f of files) {
  for (const d of parseAllDocuments(readFileSync(f, "utf8"))) {
    if (d.errors.length) errors.push(`${f}: YAML: ${d.errors[0].message}`);
    const obj = d.toJSON();
    if (obj) docs.push({ obj, where: `${f}: ${obj.kind}/${obj.metadata?.name}` });
  }
}
const clusterScoped = new Set(["Namespace", "PriorityClass", "ClusterRole", "ClusterRoleBinding", "CSIDriver"]);
for (const { obj, where } of docs) {
  if (policy && !clusterScoped.has(obj.kind))
    check(obj.metadata?.namespace, where, "no namespace (the kustomization's namespace:)");
  await schema(obj, where);
  await strict(obj, clientType(obj.apiVersion, obj.kind), where);
  if (policy && (obj.kind === "Deployment" || obj.kind === "DaemonSet"))
    podPolicy(obj, docs.map((d) => d.obj), where);
  if (csi) csiPolicy(obj, docs.map((d) => d.obj), where);
}
for (const e of errors) console.log(`INVALID ${e}`);
console.log(`${docs.length} objects, ${errors.length} problems`);
process.exit(errors.length ? 1 : 0);
