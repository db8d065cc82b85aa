// Validates rendered Kubernetes manifests offline, strictly:
//  1. kubernetes-models' schema validators: types, enums, required fields;
//  2. every field must exist in the Kubernetes API (the generated models of
//     @kubernetes/client-node list each type's fields), so a typo such as
//     `mountPropagaton` fails instead of being silently dropped by the API
//     server;
//  3. with --policy, what spfs's manifests promise (identity wiring,
//     propagation, who is privileged, probes, limits).
//
//   node validate.mjs [--policy] FILE.yaml...     exit 0 when all are valid
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const args = process.argv.slice(2);
const policy = args[0] === "--policy";
const files = policy ? args.slice(1) : args;
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
}
for (const e of errors) console.log(`INVALID ${e}`);
console.log(`${docs.length} objects, ${errors.length} problems`);
process.exit(errors.length ? 1 : 0);
