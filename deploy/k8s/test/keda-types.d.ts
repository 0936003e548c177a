// A minimal, strict type for KEDA's ScaledObject (keda.sh/v1alpha1): only the fields that sdserve's manifests
// use or may reasonably use, written from KEDA's documented ScaledObject spec. There is no CRD schema offline, so
// this stands in for it: an unknown field or a wrong type fails the check like for the built-in kinds.
import type { ObjectMeta } from "kubernetes-types/meta/v1";
import type { HorizontalPodAutoscalerBehavior } from "kubernetes-types/autoscaling/v2";

export interface ScaleTarget {
  apiVersion?: string;
  kind?: string;
  name: string;
  envSourceContainerName?: string;
}

export interface Fallback {
  failureThreshold: number;
  replicas: number;
  behavior?: "static" | "currentReplicas" | "currentReplicasIfHigher" | "currentReplicasIfLower";
}

export interface ScalingModifiers {
  formula?: string;
  target?: string;
  activationTarget?: string;
  metricType?: "AverageValue" | "Value";
}

export interface Advanced {
  restoreToOriginalReplicaCount?: boolean;
  horizontalPodAutoscalerConfig?: {
    name?: string;
    behavior?: HorizontalPodAutoscalerBehavior;
  };
  scalingModifiers?: ScalingModifiers;
}

export interface AuthenticationRef {
  name: string;
  kind?: "TriggerAuthentication" | "ClusterTriggerAuthentication";
}

export interface ScaleTrigger {
  type: string;
  name?: string;
  /** Scaler-specific settings: KEDA takes any string keys here (validate.mjs checks the prometheus ones). */
  metadata: { [key: string]: string };
  authenticationRef?: AuthenticationRef;
  metricType?: "AverageValue" | "Value" | "Utilization";
  useCachedMetrics?: boolean;
}

export interface ScaledObjectSpec {
  scaleTargetRef: ScaleTarget;
  pollingInterval?: number;
  initialCooldownPeriod?: number;
  cooldownPeriod?: number;
  idleReplicaCount?: number;
  minReplicaCount?: number;
  maxReplicaCount?: number;
  fallback?: Fallback;
  advanced?: Advanced;
  triggers: Array<ScaleTrigger>;
}

export interface ScaledObject {
  apiVersion: "keda.sh/v1alpha1";
  kind: "ScaledObject";
  metadata?: ObjectMeta;
  spec: ScaledObjectSpec;
}
