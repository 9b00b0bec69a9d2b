import Foundation

/// Pipeline versions: their graph read from the checked bytes on the loader thread, then checked
/// against what serves and made into a ``PipelineServable`` on the queue. A pipeline whose
/// models have nothing serving yet is parked, with that reason, and tried again after every
/// command that changes what serves.
extension Lifecycle {
    /// The load step of a pipeline version (instead of ONNX Runtime's).
    func loadPipeline(_ job: LoadJob) {
        let path = job.path
        let expected = job.verdict?.sha256
        loaderQueue.async { [self] in
            // What is made must be what was checked: the bytes read are hashed again.
            let data = FileManager.default.contents(atPath: path)
            let unchanged = data.map { SHA256.hex(of: $0) == expected } ?? false
            var parsed: Result<PipelineSpec, RegistryError>?
            if unchanged, let data {
                do throws(RegistryError) { parsed = .success(try PipelineSpec.parse(file: path, data: data)) } catch { parsed = .failure(error) }
            }
            let outcome = parsed
            queue.async { [self] in
                switch outcome {
                case nil:
                    job.loadError = "the file changed between its check and its load; the next scan judges it again"
                    feed(job, .changedUnderLoad)
                case .failure(let error):
                    job.loadError = "invalid pipeline: \(error.message)"
                    feed(job, .loadFailed)
                case .success(let spec):
                    job.pipeline = spec
                    if let heads = job.verdict?.manifest?.heads, !heads.isEmpty {
                        job.loadError = "manifest key 'heads' splits a model's output; a pipeline's outputs are its steps' (declare heads in the step's model)"
                        return feed(job, .loadFailed)
                    }
                    switch buildPipeline(job) {
                    case .built(let servable):
                        job.servable = servable
                        feed(job, .loaded)
                    case .failed(let reason):
                        job.loadError = reason
                        feed(job, .loadFailed)
                    case .waiting(let reason):
                        job.waitingFor = reason
                        job.loadError = reason
                        feed(job, .loadFailed)
                    }
                }
            }
        }
    }

    /// Checks a job's pipeline against the routing table in force (on the queue).
    func buildPipeline(_ job: LoadJob) -> PipelineBuilder.Outcome {
        PipelineBuilder.build(job.pipeline!, provenance: Provenance(model: job.key.model, version: job.key.version, sha256: job.verdict?.sha256 ?? ""),
                              table: router.current, router: router, pipelines: pipelineSpecs(excluding: job.key), timings: PipelineTimings())
    }

    /// The graphs of the other pipelines, by model (production's, else any loaded or parked
    /// version's): what a cycle check walks.
    func pipelineSpecs(excluding key: Key) -> [String: PipelineSpec] {
        var specs: [String: PipelineSpec] = [:]
        for (other, job) in parked where other != key { if let spec = job.pipeline { specs[other.model] = spec } }
        for (other, version) in state.loaded.sorted(by: { $0.key < $1.key }) where other != key {
            guard let pipeline = version.servable as? PipelineServable else { continue }
            if specs[other.model] == nil || state.isProduction(other) { specs[other.model] = pipeline.spec }
        }
        return specs
    }

    /// Parks a pipeline that waits for its models, saying why (on the queue).
    func park(_ job: LoadJob, _ reason: String) {
        let first = parked[job.key] == nil
        parked[job.key] = job
        if first {
            log.notice("pipeline waiting for its models", ["model.name": job.key.model, "model.version": job.key.version, "reason": reason])
        }
        // A new pipeline says so in its record; a restored one keeps its state (it is not loaded,
        // so a request gets 503 naming the state) until its models serve.
        if job.harness.cause == .admission, var record = state.records[job.key], record.reason != reason {
            record.reason = reason
            record.updatedAt = clock.now()
            let waiting = record
            do throws(RegistryError) {
                _ = try command("pipeline-wait") { draft in draft.save(waiting) }
            } catch {
                // Only the reason is not recorded: the pipeline waits all the same.
                log.error("cannot record why a pipeline waits", ["model.name": job.key.model, "model.version": job.key.version, "error": error.message])
            }
        }
    }

    /// Tries every parked pipeline again (on the queue): after a command changed what serves.
    func recheckParked() {
        pipelineRecheckScheduled = false
        guard !stopped, !stopping else { return }
        for (key, job) in parked.sorted(by: { $0.key < $1.key }) {
            // Decided about meanwhile (its file changed and was quarantined, say): that stands.
            guard parked[key] === job, state.records[key]?.state == job.record.state else {
                parked[key] = nil
                continue
            }
            let outcome = buildPipeline(job)
            if case .waiting(let reason) = outcome {
                job.waitingFor = reason
                continue
            }
            parked[key] = nil
            job.waitingFor = nil
            switch outcome {
            case .built(let servable):
                job.servable = servable
                job.harness = LoadHarness(cause: job.harness.cause, state: .ready)
            case .failed(let reason):
                job.loadError = reason
                job.harness = LoadHarness(cause: job.harness.cause, state: .failed)
            case .waiting:
                break
            }
            dispatchOutcome(job)
        }
    }

    /// Schedules ``recheckParked()`` once, after the command in progress.
    func scheduleParkedRecheck() {
        guard !parked.isEmpty, !pipelineRecheckScheduled else { return }
        pipelineRecheckScheduled = true
        queue.async { [self] in recheckParked() }
    }
}
