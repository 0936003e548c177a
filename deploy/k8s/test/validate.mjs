// Strict, offline validation of rendered kustomize output (run by validate.sh, which renders the overlays).
//
//   node validate.mjs [--self-test NAME] NAME=rendered.yaml ...     (NAME "base" skips the namespace rules)
//
// 1. Schema: each object is type-checked, with the TypeScript compiler, against the Kubernetes API type of its
//    apiVersion/kind (npm kubernetes-types, generated from the Kubernetes 1.30 OpenAPI spec) or, for KEDA's
//    ScaledObject, against keda-types.d.ts. An object is written out as a typed object literal, so TypeScript's
//    excess-property check rejects every unknown field at any depth, a wrong scalar type is rejected, and so is
//    a missing required field (containers, ports[].port, ...). An apiVersion/kind with no type fails.
// 2. Policy: resources, probes, securityContext, labels, namespaces, Service/PDB selectors that match pods,
//    autoscaler targets, ConfigMap references, GPU scheduling (see policy() below).
// 3. --self-test NAME: mutated copies of NAME's objects (misspelled fields, wrong types, missing limits, a
//    Service selector that matches nothing, ...) must each be rejected with the expected message, and the
//    unmutated copy must pass: proof that checks 1 and 2 can fail.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import ts from "typescript";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const TYPES = path.join(HERE, "node_modules", "kubernetes-types");
const NAMESPACE = "sdserve";
const PART_OF = "sdserve";
const USER = 10001;

// ---------------------------------------------------------------------------------------------------- schema

/** API group -> kubernetes-types folder. */
const GROUP_DIR = {
  "": "core", apps: "apps", autoscaling: "autoscaling", policy: "policy", batch: "batch",
  "networking.k8s.io": "networking", "rbac.authorization.k8s.io": "rbac", "scheduling.k8s.io": "scheduling",
  "storage.k8s.io": "storage", "coordination.k8s.io": "coordination", "discovery.k8s.io": "discovery",
};
/** Custom resources: apiVersion -> kind -> the module that types it. */
const CRD_TYPES = { "keda.sh/v1alpha1": { ScaledObject: path.join(HERE, "keda-types") } };

function typeModule(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string" || !/^[A-Za-z][A-Za-z0-9]*$/.test(kind)) {
    return { error: `apiVersion and kind must be strings (got ${JSON.stringify(apiVersion)}, ${JSON.stringify(kind)})` };
  }
  const crd = CRD_TYPES[apiVersion];
  if (crd) {
    return crd[kind] ? { module: crd[kind] } : { error: `no schema for ${apiVersion} ${kind}` };
  }
  const slash = apiVersion.lastIndexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = apiVersion.slice(slash + 1);
  const dir = GROUP_DIR[group];
  if (!dir || !fs.existsSync(path.join(TYPES, dir, `${version}.d.ts`))) {
    return { error: `unknown apiVersion ${apiVersion}` };
  }
  return { module: `kubernetes-types/${dir}/${version}` };
}

/** JSON of `value`, one member per line, and for each line the path of the member that starts there. */
function literal(value) {
  const lines = [];
  const paths = [];
  const emit = (text, p) => { lines.push(text); paths.push(p); };
  const walk = (v, p, indent, prefix, suffix) => {
    const pad = "  ".repeat(indent);
    if (Array.isArray(v)) {
      emit(`${pad}${prefix}[`, p);
      v.forEach((x, i) => walk(x, `${p}[${i}]`, indent + 1, "", i < v.length - 1 ? "," : ""));
      emit(`${pad}]${suffix}`, p);
    } else if (v !== null && typeof v === "object") {
      const keys = Object.keys(v);
      emit(`${pad}${prefix}{`, p);
      keys.forEach((k, i) => walk(v[k], p ? `${p}.${k}` : k, indent + 1, `${JSON.stringify(k)}: `,
        i < keys.length - 1 ? "," : ""));
      emit(`${pad}}${suffix}`, p);
    } else {
      emit(`${pad}${prefix}${JSON.stringify(v)}${suffix}`, p);
    }
  };
  walk(value, "", 0, "", ";");
  return { lines, paths };
}

/**
 * Type-checks objects in one TypeScript program. entries: [{key, obj}]. Returns Map key -> [error, ...].
 * Identical objects are checked once.
 */
function typeCheck(entries) {
  const result = new Map(entries.map((e) => [e.key, []]));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sdserve-k8s-"));
  try {
    const byText = new Map(); // source text -> {file, keys, paths, header}
    for (const { key, obj } of entries) {
      const m = typeModule(obj?.apiVersion, obj?.kind);
      if (m.error) {
        result.get(key).push(m.error);
        continue;
      }
      const { lines, paths } = literal(obj);
      const header = [`import type { ${obj.kind} as Target } from ${JSON.stringify(m.module)};`, "export {};"];
      lines[0] = `const o: Target = ${lines[0].trimStart()}`;
      const text = [...header, ...lines].join("\n") + "\n";
      if (!byText.has(text)) {
        byText.set(text, { file: path.join(dir, `o${byText.size}.ts`), keys: [], paths, header: header.length });
      }
      byText.get(text).keys.push(key);
    }
    const byFile = new Map();
    for (const [text, f] of byText) {
      fs.writeFileSync(f.file, text);
      byFile.set(path.resolve(f.file), f);
    }
    const program = ts.createProgram([...byFile.keys()], {
      strict: true, noEmit: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler,
      types: [], baseUrl: HERE, paths: { "kubernetes-types/*": [path.join(TYPES, "*")] },
    });
    const seen = new Set();
    for (const d of ts.getPreEmitDiagnostics(program)) {
      const message = ts.flattenDiagnosticMessageText(d.messageText, " ").replace(/\s+/g, " ");
      const f = d.file && byFile.get(path.resolve(d.file.fileName));
      if (!f) {
        throw new Error(`TypeScript: ${message}`); // the set-up is broken, not an object
      }
      const line = d.file.getLineAndCharacterOfPosition(d.start).line;
      const at = line < f.header ? "(kind)" : f.paths[line - f.header] || "(object)";
      // The literal's keys are quoted, so TypeScript writes '"replica"': print 'replica'; name keda-types by name.
      const text = `${at}: ${message.replace(/'"([^"']*)"'/g, "'$1'").replace(/'\/[^']*\/(keda-types)'/g, "'$1'")}`;
      for (const key of f.keys) {
        if (!seen.has(key + text)) {
          seen.add(key + text);
          result.get(key).push(text);
        }
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------- policy

const get = (o, p) => p.split(".").reduce((v, k) => (v == null ? undefined : v[k]), o);
const id = (o) => `${o?.kind}/${o?.metadata?.name}`;
const matches = (selector, labels) =>
  selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);
const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass"]);

/** Policy errors of one rendered set: ["Kind/name: what", ...]. */
function policy(objs, { overlay }) {
  const errs = [];
  const err = (o, msg) => errs.push(`${id(o)}: ${msg}`);
  const of = (kind) => objs.filter((o) => o?.kind === kind);
  const deployments = of("Deployment");
  const configMaps = new Map(of("ConfigMap").map((c) => [c.metadata?.name, c]));
  const ns = (o) => o?.metadata?.namespace ?? "";

  for (const o of objs) {
    if (!o?.metadata?.name) err(o, "metadata.name is missing");
    if (get(o, "metadata.labels")?.["app.kubernetes.io/part-of"] !== PART_OF) {
      err(o, `label app.kubernetes.io/part-of is not ${PART_OF}`);
    }
    if (overlay && !CLUSTER_SCOPED.has(o?.kind) && ns(o) !== NAMESPACE) {
      err(o, `namespace is ${JSON.stringify(ns(o))}, not ${NAMESPACE}`);
    }
  }
  if (overlay && !of("Namespace").some((n) => n.metadata?.name === NAMESPACE)) {
    errs.push(`Namespace ${NAMESPACE} is not among the objects`);
  }

  for (const d of deployments) {
    const name = d.metadata?.name;
    const pod = get(d, "spec.template.spec") ?? {};
    const labels = get(d, "spec.template.metadata.labels") ?? {};
    if (labels["app.kubernetes.io/name"] !== name) err(d, "pod label app.kubernetes.io/name is not the Deployment's name");
    if (labels["app.kubernetes.io/part-of"] !== PART_OF) err(d, "pod label app.kubernetes.io/part-of is missing");
    if (!matches(get(d, "spec.selector.matchLabels"), labels)) err(d, "spec.selector does not match its pod labels");
    const psc = pod.securityContext ?? {};
    if (psc.runAsNonRoot !== true) err(d, "pod securityContext.runAsNonRoot is not true");
    if (psc.runAsUser !== USER) err(d, `pod securityContext.runAsUser is not ${USER}`);
    if (get(psc, "seccompProfile.type") !== "RuntimeDefault") err(d, "pod seccompProfile is not RuntimeDefault");
    if (pod.automountServiceAccountToken !== false) err(d, "automountServiceAccountToken is not false");
    const spread = (pod.topologySpreadConstraints ?? []).find((t) => t.topologyKey === "kubernetes.io/hostname");
    if (!spread) err(d, "no topologySpreadConstraint over kubernetes.io/hostname");
    else if (!matches(get(spread, "labelSelector.matchLabels"), labels)) err(d, "topologySpreadConstraint selects other pods");
    const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
    if (!volumes.get("tmp")?.emptyDir) err(d, "no emptyDir volume tmp");
    const containers = pod.containers ?? [];
    if (containers.length === 0) err(d, "no containers");

    const all = [...(pod.initContainers ?? []).map((c) => ["initContainer", c]), ...containers.map((c) => ["container", c])];
    for (const [what, c] of all) {
      const where = `${what} ${c.name}`;
      for (const r of ["requests", "limits"]) {
        for (const q of ["cpu", "memory"]) {
          if (get(c, `resources.${r}.${q}`) == null) err(d, `${where}: resources.${r}.${q} is missing`);
        }
      }
      const sc = c.securityContext ?? {};
      if (sc.runAsNonRoot !== true) err(d, `${where}: securityContext.runAsNonRoot is not true`);
      if (sc.runAsUser !== USER) err(d, `${where}: securityContext.runAsUser is not ${USER}`);
      if (sc.readOnlyRootFilesystem !== true) err(d, `${where}: securityContext.readOnlyRootFilesystem is not true`);
      if (sc.allowPrivilegeEscalation !== false) err(d, `${where}: securityContext.allowPrivilegeEscalation is not false`);
      if (sc.privileged === true) err(d, `${where}: privileged`);
      if (!(get(sc, "capabilities.drop") ?? []).includes("ALL")) err(d, `${where}: securityContext.capabilities.drop lacks ALL`);
      if ((get(sc, "capabilities.add") ?? []).length > 0) err(d, `${where}: securityContext.capabilities.add is not empty`);
      if (get(sc, "seccompProfile.type") !== "RuntimeDefault") err(d, `${where}: seccompProfile is not RuntimeDefault`);
      if (typeof c.image !== "string" || !/^[^@\s]+:[\w][\w.-]*$/.test(c.image)) err(d, `${where}: image ${c.image} has no tag`);
      for (const m of c.volumeMounts ?? []) {
        if (!volumes.has(m.name)) err(d, `${where}: mounts volume ${m.name}, which the pod does not have`);
      }
    }

    for (const c of containers) {
      const where = `container ${c.name}`;
      const ports = new Set((c.ports ?? []).map((p) => p.containerPort));
      const probePort = (p) => get(p, "grpc.port") ?? get(p, "tcpSocket.port") ?? get(p, "httpGet.port");
      // readiness: the native gRPC probe, or (with TLS on the gRPC port, which kubelet's gRPC probe cannot speak)
      // the management port's /q/health/ready, which follows the gRPC health
      const ready = c.readinessProbe;
      if (!ready?.grpc && get(ready, "httpGet.path") !== "/q/health/ready") {
        err(d, `${where}: readinessProbe is neither a gRPC probe nor an HTTP probe of /q/health/ready`);
      } else if (!ports.has(probePort(ready))) err(d, `${where}: readinessProbe port is not a container port`);
      if (!c.livenessProbe) err(d, `${where}: livenessProbe is missing`);
      else if (!ports.has(probePort(c.livenessProbe))) err(d, `${where}: livenessProbe is not a gRPC, TCP or HTTP probe on a container port`);
      const mounts = new Map((c.volumeMounts ?? []).map((m) => [m.mountPath, m]));
      if (mounts.get("/tmp")?.name !== "tmp") err(d, `${where}: the emptyDir tmp is not mounted at /tmp`);
      const models = mounts.get("/models");
      if (models && (models.name !== "models" || models.readOnly !== true)) err(d, `${where}: /models is not the read-only volume models`);

      const env = {};
      for (const e of c.envFrom ?? []) {
        const ref = get(e, "configMapRef.name");
        const cm = configMaps.get(ref);
        if (!cm) err(d, `${where}: envFrom names ConfigMap ${ref}, which is not among the objects`);
        else if (ns(cm) !== ns(d)) err(d, `${where}: ConfigMap ${ref} is in another namespace`);
        else Object.assign(env, cm.data);
      }
      for (const [k, v] of Object.entries(env)) {
        if (k.endsWith("_MODEL_DIR")) {
          if (!models) err(d, `${where}: ${k} is set but /models is not mounted`);
          else if (!String(v).startsWith("/models/")) err(d, `${where}: ${k}=${v} is not under /models`);
        }
        // Stage targets of the orchestrator: dns:///<service>[.<ns>...]:<port>, a headless Service serving that port.
        if (/^SD_ORCHESTRATOR_(TEXT_ENCODER|DENOISER|VAE)$/.test(k)) {
          for (const target of String(v).split(",")) {
            const m = /^dns:\/\/\/([a-z0-9-]+)(\.[a-z0-9.-]+)?:(\d+)$/.exec(target);
            const svc = m && of("Service").find((s) => s.metadata?.name === m[1] && ns(s) === ns(d));
            if (!m) err(d, `${where}: ${k}=${target} is not dns:///<service>:<port>`);
            else if (!svc || get(svc, "spec.clusterIP") !== "None") err(d, `${where}: ${k} names ${m[1]}, not a headless Service here`);
            else if (!(svc.spec.ports ?? []).some((p) => p.port === Number(m[3]))) err(d, `${where}: ${k}: Service ${m[1]} has no port ${m[3]}`);
          }
        }
      }
      const gpu = get(c, "resources.limits")?.["nvidia.com/gpu"];
      if (gpu != null) {
        if (get(pod, "nodeSelector")?.["nvidia.com/gpu.present"] !== "true") err(d, `${where}: uses a GPU without nodeSelector nvidia.com/gpu.present`);
        if (!(pod.tolerations ?? []).some((t) => t.key === "nvidia.com/gpu" && t.effect === "NoSchedule")) err(d, `${where}: uses a GPU without a toleration for nvidia.com/gpu`);
        if (!Object.entries(env).some(([k, v]) => k.endsWith("_DEVICE") && v === "cuda")) err(d, `${where}: uses a GPU but its settings do not say device=cuda`);
      }
    }
  }

  const podsOf = (o, selector) => deployments.filter((d) => ns(d) === ns(o) && matches(selector, get(d, "spec.template.metadata.labels")));
  for (const s of of("Service")) {
    const targets = podsOf(s, get(s, "spec.selector"));
    if (targets.length === 0) {
      err(s, `selector ${JSON.stringify(get(s, "spec.selector"))} matches no Deployment's pods`);
      continue;
    }
    for (const p of get(s, "spec.ports") ?? []) {
      const t = p.targetPort ?? p.port;
      for (const d of targets) {
        const ports = (get(d, "spec.template.spec.containers") ?? []).flatMap((c) => c.ports ?? []);
        if (!ports.some((cp) => cp.containerPort === t || cp.name === t)) err(s, `targetPort ${t} is no container port of ${id(d)}`);
      }
    }
  }
  for (const p of of("PodDisruptionBudget")) {
    if (podsOf(p, get(p, "spec.selector.matchLabels")).length === 0) err(p, "selector matches no Deployment's pods");
    if (get(p, "spec.maxUnavailable") !== 1) err(p, "maxUnavailable is not 1");
  }

  const scalers = new Map(); // Deployment name -> [autoscaler id]
  for (const a of [...of("HorizontalPodAutoscaler"), ...of("ScaledObject")]) {
    const ref = get(a, "spec.scaleTargetRef") ?? {};
    const d = deployments.find((x) => x.metadata?.name === ref.name && ns(x) === ns(a));
    if (!d || (ref.kind ?? "Deployment") !== "Deployment") {
      err(a, `scaleTargetRef ${ref.kind}/${ref.name} is not a Deployment here`);
      continue;
    }
    scalers.set(ref.name, [...(scalers.get(ref.name) ?? []), id(a)]);
    const [min, max] = a.kind === "ScaledObject"
      ? [get(a, "spec.minReplicaCount") ?? 0, get(a, "spec.maxReplicaCount") ?? 100]
      : [get(a, "spec.minReplicas") ?? 1, get(a, "spec.maxReplicas")];
    const replicas = get(d, "spec.replicas") ?? 1;
    if (!(min <= replicas && replicas <= max)) err(a, `${id(d)} has ${replicas} replicas, outside [${min}, ${max}]`);
  }
  for (const d of deployments) {
    const s = scalers.get(d.metadata?.name) ?? [];
    if (s.length !== 1) err(d, `has ${s.length} autoscalers (${s.join(", ") || "none"}), not 1`);
  }
  for (const so of of("ScaledObject")) {
    for (const t of get(so, "spec.triggers") ?? []) {
      if (t.type !== "prometheus") continue;
      const known = ["serverAddress", "query", "threshold", "activationThreshold", "namespace", "customHeaders",
        "ignoreNullValues", "unsafeSsl", "authModes", "queryParameters"];
      for (const k of ["serverAddress", "query", "threshold"]) if (!t.metadata?.[k]) err(so, `prometheus trigger: metadata.${k} is missing`);
      for (const k of Object.keys(t.metadata ?? {})) if (!known.includes(k)) err(so, `prometheus trigger: unknown metadata.${k}`);
      if (t.metadata?.threshold && !/^\d+(\.\d+)?$/.test(t.metadata.threshold)) err(so, "prometheus trigger: threshold is not a number");
    }
  }
  return errs;
}

// ---------------------------------------------------------------------------------------------------- self-test

const clone = (x) => structuredClone(x);
const find = (objs, kind, name) => {
  const o = objs.find((x) => x.kind === kind && x.metadata?.name === name);
  if (!o) throw new Error(`self-test: ${kind}/${name} is not in the rendered set`);
  return o;
};
const den = (objs) => find(objs, "Deployment", "denoiser");
const denC = (objs) => den(objs).spec.template.spec.containers[0];

/** Each case: what it breaks, a mutation of a copy of the rendered set, and the error it must cause. */
const NEGATIVE = [
  ["Deployment with spec.replica (misspelled replicas)", (o) => { const s = den(o).spec; s.replica = s.replicas; delete s.replicas; },
    /spec\.replica: .*'replica' does not exist in type 'DeploymentSpec'/],
  ["container with imagePullPolcy (misspelled)", (o) => { const c = denC(o); c.imagePullPolcy = c.imagePullPolicy; delete c.imagePullPolicy; },
    /imagePullPolcy.*does not exist in type 'Container'/],
  ["unknown field deep inside a probe (grpc.prot)", (o) => { const g = denC(o).readinessProbe.grpc; g.prot = g.port; },
    /readinessProbe\.grpc\.prot: .*does not exist in type 'GRPCAction'/],
  ["unknown top-level field", (o) => { den(o).sepc = {}; }, /sepc.*does not exist in type 'Deployment'/],
  ["spec.replicas as a string", (o) => { den(o).spec.replicas = "2"; }, /spec\.replicas: Type 'string' is not assignable to type 'number'/],
  ["Service port as a string", (o) => { find(o, "Service", "denoiser").spec.ports[0].port = "50052"; },
    /spec\.ports\[0\]\.port: Type 'string' is not assignable to type 'number'/],
  ["runAsNonRoot as the string \"true\"", (o) => { den(o).spec.template.spec.securityContext.runAsNonRoot = "true"; },
    /runAsNonRoot: Type 'string' is not assignable to type 'boolean( \| undefined)?'/],
  ["Deployment without containers (required)", (o) => { delete den(o).spec.template.spec.containers; },
    /Property 'containers' is missing/],
  ["HPA with averageUtilisation (misspelled)", (o) => { const t = find(o, "HorizontalPodAutoscaler", "vae").spec.metrics[0].resource.target; t.averageUtilisation = 70; delete t.averageUtilization; },
    /averageUtilisation.*does not exist in type 'MetricTarget'/],
  ["PDB with maxUnavailable as an object", (o) => { find(o, "PodDisruptionBudget", "vae").spec.maxUnavailable = { n: 1 }; },
    /maxUnavailable: .*not assignable/],
  ["misspelled kind", (o) => { den(o).kind = "Deploymnet"; }, /has no exported member named 'Deploymnet'/],
  ["unknown apiVersion", (o) => { den(o).apiVersion = "apps/v9"; }, /unknown apiVersion apps\/v9/],
  ["ScaledObject with spec.triggers[0].metdata (CRD check)", (o) => { const t = find(o, "ScaledObject", "denoiser").spec.triggers[0]; t.metdata = t.metadata; delete t.metadata; },
    /triggers\[0\]\.metdata: .*does not exist in type 'ScaleTrigger'/],
  ["ScaledObject with maxReplicaCount as a string", (o) => { find(o, "ScaledObject", "denoiser").spec.maxReplicaCount = "4"; },
    /maxReplicaCount: Type 'string' is not assignable to type 'number'/],
  ["prometheus trigger without a query", (o) => { delete find(o, "ScaledObject", "denoiser").spec.triggers[0].metadata.query; },
    /metadata\.query is missing/],
  ["container without resource limits", (o) => { delete denC(o).resources.limits; }, /container denoiser: resources\.limits\.cpu is missing/],
  ["initContainer without a memory request", (o) => { delete den(o).spec.template.spec.initContainers[0].resources.requests.memory; },
    /initContainer model: resources\.requests\.memory is missing/],
  ["writable root filesystem", (o) => { denC(o).securityContext.readOnlyRootFilesystem = false; }, /readOnlyRootFilesystem is not true/],
  ["capabilities not dropped", (o) => { denC(o).securityContext.capabilities.drop = []; }, /capabilities\.drop lacks ALL/],
  ["pod running as root", (o) => { den(o).spec.template.spec.securityContext.runAsUser = 0; }, /pod securityContext\.runAsUser is not 10001/],
  ["no seccomp profile", (o) => { delete denC(o).securityContext.seccompProfile; }, /container denoiser: seccompProfile is not RuntimeDefault/],
  ["no liveness probe", (o) => { delete denC(o).livenessProbe; }, /livenessProbe is missing/],
  ["HTTP readiness probe of another path", (o) => { denC(o).readinessProbe = { httpGet: { path: "/", port: 8080 } }; }, /readinessProbe is neither a gRPC probe nor an HTTP probe of \/q\/health\/ready/],
  ["health readiness probe on a port the container does not open", (o) => { denC(o).readinessProbe = { httpGet: { path: "/q/health/ready", port: 9999 } }; }, /readinessProbe port is not a container port/],
  ["Service selector that matches no pods", (o) => { find(o, "Service", "denoiser-headless").spec.selector = { "app.kubernetes.io/name": "denoiser-typo" }; },
    /Service\/denoiser-headless: selector .* matches no Deployment's pods/],
  ["Service targetPort that no container has", (o) => { find(o, "Service", "vae").spec.ports[0].targetPort = "grcp"; },
    /targetPort grcp is no container port/],
  ["orchestrator target without a headless Service", (o) => {
    const cm = o.find((x) => x.kind === "ConfigMap" && x.metadata.name.startsWith("orchestrator-settings"));
    cm.data.SD_ORCHESTRATOR_VAE = "dns:///vae:50053"; }, /SD_ORCHESTRATOR_VAE names vae, not a headless Service/],
  ["envFrom of a missing ConfigMap", (o) => { denC(o).envFrom[0].configMapRef.name = "nope"; }, /envFrom names ConfigMap nope/],
  ["models volume mounted writable", (o) => { denC(o).volumeMounts.find((m) => m.mountPath === "/models").readOnly = false; },
    /\/models is not the read-only volume models/],
  ["a second autoscaler (HPA beside the ScaledObject)", (o) => { const h = clone(find(o, "HorizontalPodAutoscaler", "vae")); h.metadata.name = "denoiser"; h.spec.scaleTargetRef.name = "denoiser"; o.push(h); },
    /Deployment\/denoiser: has 2 autoscalers/],
  ["object outside the namespace", (o) => { delete find(o, "Service", "vae").metadata.namespace; }, /Service\/vae: namespace is "", not sdserve/],
  ["object without the part-of label", (o) => { delete find(o, "PodDisruptionBudget", "vae").metadata.labels["app.kubernetes.io/part-of"]; },
    /PodDisruptionBudget\/vae: label app\.kubernetes\.io\/part-of is not sdserve/],
  ["GPU container without the GPU toleration", (o) => { denC(o).resources.limits["nvidia.com/gpu"] = "1"; },
    /uses a GPU without nodeSelector/],
];

// ---------------------------------------------------------------------------------------------------- main

function load(file) {
  return YAML.parseAllDocuments(fs.readFileSync(file, "utf8")).map((doc) => {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
    return doc.toJS();
  }).filter((o) => o != null);
}

function main(argv) {
  let selfTest = null;
  const sets = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--self-test") selfTest = argv[++i];
    else {
      const [name, file] = argv[i].split("=");
      sets.push({ name, objs: load(file), overlay: name !== "base" });
    }
  }
  // Every set to judge: the rendered ones, then (with --self-test) the unmutated copy and each mutated one.
  const runs = sets.map((s) => ({ label: `render ${s.name} (${s.objs.length} objects)`, ...s, expect: null }));
  if (selfTest) {
    const base = sets.find((s) => s.name === selfTest);
    if (!base) throw new Error(`--self-test ${selfTest}: no such set`);
    runs.push({ label: `self-test control: unmutated copy of ${selfTest} passes`, objs: clone(base.objs), overlay: true, expect: null });
    for (const [what, mutate, expect] of NEGATIVE) {
      const objs = clone(base.objs);
      mutate(objs);
      runs.push({ label: `self-test must reject: ${what}`, objs, overlay: true, expect });
    }
  }
  const entries = runs.flatMap((r, i) => r.objs.map((obj, j) => ({ key: `${i}#${j}`, obj })));
  const schema = typeCheck(entries);
  let passed = 0;
  let failed = 0;
  for (const [i, r] of runs.entries()) {
    const errors = [
      ...r.objs.flatMap((o, j) => schema.get(`${i}#${j}`).map((e) => `${id(o)}: schema: ${e}`)),
      ...policy(r.objs, { overlay: r.overlay }).map((e) => `policy: ${e}`),
    ];
    const ok = r.expect ? errors.some((e) => r.expect.test(e)) : errors.length === 0;
    if (ok) passed++;
    else failed++;
    console.log(`${ok ? "ok  " : "FAIL"} ${r.label}`);
    if (r.expect) {
      const hit = errors.find((e) => r.expect.test(e));
      console.log(hit ? `       rejected: ${hit}` : `       expected an error matching ${r.expect}, got: ${errors.join(" | ") || "none"}`);
    } else {
      for (const e of errors) console.log(`       ${e}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
