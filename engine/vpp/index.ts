// VPP dispatch: the functions an HTTP layer needs (`POST /v1/vpp/:id/optimize` is
// `optimizeDispatch(await loadLpSolver(), { resources, demandKw, horizon, constraints })`).
export { loadLpSolver, type Highs } from "./linearProgram.js";
export { optimizeDispatch, type OptimizeDispatchParameters, type OptimizeDispatchReturnType } from "./optimizeDispatch.js";
export { checkDispatch, type CheckDispatchReturnType, type DispatchViolation } from "./checkDispatch.js";
export { validateDispatchRequest, type NormalizedDispatch } from "./validateDispatchRequest.js";
export * from "./types.js";
