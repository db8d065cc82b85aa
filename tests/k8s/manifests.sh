#!/bin/sh
# The Kubernetes manifests, offline: `kubectl kustomize` renders both
# overlays and the CSI driver with its examples, and every rendered object
# validates strictly (schema, no unknown fields, spfs's own rules, the
# restricted Pod Security Standard for the CSI examples' apps). Then the
# validator must catch what it is for: a typo'd field, a wrong enum, a
# missing identity label, a privileged app.
set -eu
src=${SPFS_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
work=${SPFS_BUILDDIR:-.}/tests/k8s-check
mkdir -p "$work"

command -v kubectl >/dev/null || {
	echo "kubectl not found (scripts/install-deps installs kubernetes-client)"
	exit 1
}
# The validator's npm packages, pinned by the committed lock file, installed
# once into the build tree (the source tree may be read-only).
if ! cmp -s "$src/tests/k8s/package-lock.json" "$work/package-lock.json" ||
	[ ! -d "$work/node_modules" ]; then
	cp "$src/tests/k8s/package.json" "$src/tests/k8s/package-lock.json" "$work/"
	(cd "$work" && npm ci --no-audit --no-fund --loglevel=error) || {
		echo "npm ci failed: the npm registry must be reachable"
		exit 1
	}
fi
cp "$src/tests/k8s/validate.mjs" "$work/"

fail=0
for overlay in sidecar node; do
	out="$work/$overlay.yaml"
	kubectl kustomize "$src/k8s/overlays/$overlay" >"$out" 2>"$work/$overlay.err" || {
		cat "$work/$overlay.err"
		echo "not ok - kubectl kustomize k8s/overlays/$overlay"
		fail=1
		continue
	}
	# kustomize warns on stderr of what it will stop supporting (bases:,
	# commonLabels, ...): the manifests must render without warnings.
	if [ -s "$work/$overlay.err" ]; then
		sed 's/^/  /' "$work/$overlay.err"
		echo "not ok - kubectl kustomize k8s/overlays/$overlay warns"
		fail=1
	fi
	if node "$work/validate.mjs" --policy "$out"; then
		echo "ok - $overlay overlay renders and validates"
	else
		echo "not ok - $overlay overlay"
		fail=1
	fi
done

# The CSI driver (k8s/csi) and the apps that use it (k8s/csi/examples),
# validated together: the apps' checks need the CSIDriver.
for dir in csi csi/examples; do
	out="$work/$(echo "$dir" | tr / -).yaml"
	kubectl kustomize "$src/k8s/$dir" >"$out" 2>"$out.err" || {
		cat "$out.err"
		echo "not ok - kubectl kustomize k8s/$dir"
		fail=1
	}
done
# The built spfs-csi (when there is one) must take the manifests' arguments.
SPFS_CSI_BIN=${SPFS_BUILDDIR:-.}/spfs-csi
export SPFS_CSI_BIN
if node "$work/validate.mjs" --csi "$work/csi.yaml" "$work/csi-examples.yaml"; then
	echo "ok - the CSI driver and its examples render and validate (restricted apps)"
else
	echo "not ok - the CSI driver's manifests"
	fail=1
fi

# expect_invalid NAME SED-EXPRESSION [BASE MODE]: the broken rendering of
# BASE (default: the sidecar overlay) must be refused.
expect_invalid() {
	base=${3:-sidecar}
	mode=${4:---policy}
	sed "$2" "$work/$base.yaml" >"$work/broken-$1.yaml"
	extra=""
	[ "$base" = csi-examples ] && extra="$work/csi.yaml"
	if cmp -s "$work/$base.yaml" "$work/broken-$1.yaml"; then
		echo "not ok - $1: the edit changed nothing (test is stale)"
		fail=1
	elif node "$work/validate.mjs" "$mode" "$work/broken-$1.yaml" $extra >"$work/broken-$1.out"; then
		echo "not ok - $1 was accepted"
		fail=1
	else
		echo "ok - $1 refused: $(grep -m1 INVALID "$work/broken-$1.out")"
	fi
}
expect_invalid typo 's/mountPropagation: HostToContainer/mountPropagaton: HostToContainer/'
expect_invalid enum 's/mountPropagation: Bidirectional/mountPropagation: Bidirectionnal/'
expect_invalid label 's|azure.workload.identity/use: "true"|azure.workload.identity/use: "false"|'
expect_invalid writable 's/readOnly: true/readOnly: false/'
expect_invalid kind 's/^kind: Deployment/kind: Deploymnet/'
expect_invalid skip-containers 's|skip-containers: app|skip-containers: spfs|'
expect_invalid api-token 's/automountServiceAccountToken: false/automountServiceAccountToken: true/'
expect_invalid probe-timeout '0,/timeoutSeconds: 5/{/timeoutSeconds: 5/d}'
expect_invalid startup-probe 's|path: /mounted|path: /ready|'
expect_invalid mount-on-root 's|/mnt/sharepoint/library|/mnt/sharepoint|'
expect_invalid mountpoint-mode 's/chmod 000/chmod 755/'
expect_invalid app-sigterm "s/trap 'exit 0' TERM/: no trap/"
expect_invalid ephemeral-storage '/ephemeral-storage:/d'
expect_invalid image-tag 's|image: spfs:0.1.0|image: spfs|'
expect_invalid namespace '/namespace: spfs/d'
expect_invalid node-priority '/priorityClassName:/d' node
expect_invalid node-update 's/type: OnDelete/type: RollingUpdate/' node
expect_invalid node-qos '0,/cpu: 250m/{s/cpu: 250m/cpu: 200m/}' node
expect_invalid node-mount-on-root 's|/var/lib/spfs/finance/library|/var/lib/spfs/finance|' node
expect_invalid csi-republish 's/requiresRepublish: true/requiresRepublish: false/' csi --csi
expect_invalid csi-audience 's|audience: api://AzureADTokenExchange|audience: api://other|' csi --csi
expect_invalid csi-rollout 's/type: OnDelete/type: RollingUpdate/' csi --csi
expect_invalid csi-propagation 's/mountPropagation: Bidirectional/mountPropagation: HostToContainer/' csi --csi
expect_invalid csi-root-app 's/runAsNonRoot: true/runAsNonRoot: false/' csi-examples --csi
expect_invalid csi-escalating-app 's/allowPrivilegeEscalation: false/allowPrivilegeEscalation: true/' csi-examples --csi
expect_invalid csi-unconfined-app 's/type: RuntimeDefault/type: Unconfined/' csi-examples --csi
expect_invalid csi-writable 's/readOnly: true/readOnly: false/' csi-examples --csi
expect_invalid csi-flag 's/--state-dir=/--statedir=/' csi --csi
expect_invalid csi-hostpath-app '/persistentVolumeClaim:$/,/readOnly: true$/{s|persistentVolumeClaim:|hostPath:|; s|claimName: sharepoint-finance|path: /var/lib/spfs|; /readOnly: true/d}' csi-examples --csi
exit "$fail"
