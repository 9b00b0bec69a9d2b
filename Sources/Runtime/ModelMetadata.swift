/// What the model file says about itself (`OrtModelMetadata`).
public struct ModelMetadata: Sendable, Equatable {
    public var producerName: String
    public var graphName: String
    public var domain: String
    public var description: String
    public var version: Int64
    /// The model's `metadata_props`.
    public var custom: [String: String]

    public init(
        producerName: String = "", graphName: String = "", domain: String = "",
        description: String = "", version: Int64 = 0, custom: [String: String] = [:]
    ) {
        self.producerName = producerName
        self.graphName = graphName
        self.domain = domain
        self.description = description
        self.version = version
        self.custom = custom
    }
}
