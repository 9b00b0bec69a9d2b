import Foundation
import Runtime
import Testing
@testable import Registry

/// The manifest's `preprocess`: how contracts are read, checked against the model's inputs, and
/// how a raw tensor becomes the model's input.
@Suite("preprocessing contracts")
struct PreprocessTests {
    static func parse(_ json: String) -> Result<Manifest, RegistryError> {
        do throws(RegistryError) { return .success(try Manifest.parse(file: "m/1/manifest.json", data: Data(json.utf8))) } catch { return .failure(error) }
    }

    static func message(_ json: String) -> String {
        switch parse(json) {
        case .success: "parsed"
        case .failure(let error): error.message
        }
    }

    @Test("the issue's contract reads as declared; defaults are scale 1, mean 0, std 1, RGB, the model in the layout clients send")
    func reads() throws {
        let json = #"{"preprocess":{"image":{"accepts":{"datatype":"UINT8","layout":"NHWC"},"to_layout":"NCHW","scale":0.0039215686,"mean":[0.485,0.456,0.406],"std":[0.229,0.224,0.225],"channel_order":"RGB"}}}"#
        let contract = try #require(Self.parse(json).get().preprocess["image"])
        #expect(contract.datatype == .uint8 && contract.layout == .nhwc && contract.toLayout == .nchw && contract.modelLayout == .nchw)
        #expect(contract.scale == Float(0.0039215686) && contract.channelOrder == .rgb)
        #expect(contract.mean == .perChannel([0.485, 0.456, 0.406]) && contract.std == .perChannel([0.229, 0.224, 0.225]))
        let bare = try #require(Self.parse(#"{"preprocess":{"x":{"accepts":{"datatype":"FP32","layout":null},"scale":null}}}"#).get().preprocess["x"])
        #expect(bare == Manifest.Preprocess(datatype: .float))
        #expect(bare.scale == 1 && bare.mean == .all(0) && bare.std == .all(1) && bare.channelOrder == .rgb && bare.modelLayout == nil)
        let nf = try #require(Self.parse(#"{"preprocess":{"input":{"accepts":{"datatype":"UINT8","layout":"NF"},"mean":0.5,"std":[2]}}}"#).get().preprocess["input"])
        #expect(nf.modelLayout == .nf && nf.mean == .all(0.5) && nf.std == .perChannel([2]))
    }

    @Test("every digits pipeline fixture's manifest reads as raw UINT8 [N,64] scaled by 1/16, with class names")
    func fixtureManifests() throws {
        for name in ["digits_router", "digits_router_b", "digits_group0", "digits_group1", "digits_group2"] {
            let manifest = try Self.parse(String(contentsOfFile: "\(fixtures)/\(name)_manifest.json", encoding: .utf8)).get()
            #expect(manifest.preprocess == ["input": Manifest.Preprocess(datatype: .uint8, layout: .nf, scale: 0.0625)], "\(name)")
            #expect(manifest.labels["probabilities"]?.isEmpty == false, "\(name)")
            #expect(manifest.servingKeys == ["labels", "preprocess"])
        }
        #expect(try Self.parse(#"{"preprocess":{"x":{"accepts":{"datatype":"INT8"}}}}"#).get().servingKeys == ["preprocess"],
                "a contract changes answers: a signature must cover the manifest that declares it")
    }

    @Test("a malformed contract names the manifest key", arguments: [
        (#"{"preprocess":[1]}"#, "key 'preprocess': expected an object of input name to its contract"),
        (#"{"preprocess":{"x":1}}"#, "key 'preprocess.x': expected an object {\"accepts\""),
        (#"{"preprocess":{"x":{}}}"#, "key 'preprocess.x.accepts': expected an object {\"datatype\": ..., \"layout\": ...} (the raw form clients send), got nothing"),
        (#"{"preprocess":{"x":{"accepts":"UINT8"}}}"#, "key 'preprocess.x.accepts': expected an object"),
        (#"{"preprocess":{"x":{"accepts":{"layout":"NF"}}}}"#, "key 'preprocess.x.accepts.datatype': expected one of \"UINT8\", \"INT8\", \"UINT16\", \"INT16\", \"UINT32\", \"INT32\", \"UINT64\", \"INT64\", \"FP32\", \"FP64\", got nothing"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"BOOL"}}}}"#, "key 'preprocess.x.accepts.datatype': expected one of"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"uint8"}}}}"#, "got \"uint8\""),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8","layuot":"NF"}}}}"#, "key 'preprocess.x.accepts.layuot': unknown key (did you mean 'preprocess.x.accepts.layout'?)"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8","layout":"HWC"}}}}"#, "key 'preprocess.x.accepts.layout': expected one of \"NHWC\", \"NCHW\", \"NF\", got \"HWC\""),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8"},"sacle":2}}}"#, "key 'preprocess.x.sacle': unknown key (did you mean 'preprocess.x.scale'?)"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8"},"to_layout":"NCHW"}}}"#, "key 'preprocess.x.to_layout': needs 'accepts.layout', the layout clients send"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8","layout":"NF"},"to_layout":"NCHW"}}}"#, "key 'preprocess.x.to_layout': 'NCHW' from 'NF': only NHWC and NCHW convert into each other"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8","layout":"NHWC"},"to_layout":"CHW"}}}"#, "key 'preprocess.x.to_layout': expected one of"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8"},"scale":0}}}"#, "key 'preprocess.x.scale': expected a finite number other than 0, got 0"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8"},"scale":"0.5"}}}"#, "key 'preprocess.x.scale': expected a finite number other than 0, got \"0.5\""),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8"},"scale":1e300}}}"#, "key 'preprocess.x.scale': expected a finite number other than 0"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8"},"mean":true}}}"#, "key 'preprocess.x.mean': expected a finite number or an array of one per channel, got a boolean"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8","layout":"NHWC"},"mean":[]}}}"#, "key 'preprocess.x.mean': expected a finite number or an array of one per channel, got an empty array"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8","layout":"NHWC"},"mean":[0.1,"a",0.3]}}}"#, "key 'preprocess.x.mean[1]': expected a finite number, got \"a\""),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8","layout":"NHWC"},"std":[0.2,0,0.2]}}}"#, "key 'preprocess.x.std[1]': expected a number above 0, got 0"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8"},"std":-1}}}"#, "key 'preprocess.x.std': expected a number above 0 or an array of one per channel, got -1"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8","layout":"NF"},"mean":[0.1,0.2]}}}"#, "key 'preprocess.x.mean': 2 values for one channel: without an image layout (NHWC, NCHW) the input has one channel; give one value"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8"},"std":[1,2,3]}}}"#, "key 'preprocess.x.std': 3 values for one channel"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8","layout":"NF"},"channel_order":"BGR"}}}"#, "key 'preprocess.x.channel_order': needs an image layout (NHWC or NCHW) in 'accepts.layout'"),
        (#"{"preprocess":{"x":{"accepts":{"datatype":"UINT8","layout":"NHWC"},"channel_order":"bgr"}}}"#, "key 'preprocess.x.channel_order': expected one of \"RGB\", \"BGR\", got \"bgr\""),
        (#"{"preprocesss":{}}"#, "unknown key 'preprocesss' (did you mean 'preprocess'?)"),
    ])
    func malformed(json: String, expected: String) {
        let message = Self.message(json)
        #expect(message.hasPrefix("m/1/manifest.json: ") && message.contains(expected), "\(message)")
    }

    static let nchw = TensorInfo(name: "image", elementType: .float, shape: [.variable(name: "batch"), .fixed(3), .fixed(28), .fixed(32)])

    static func contract(_ json: String) throws -> Manifest.Preprocess {
        try #require(parse(#"{"preprocess":{"image":\#(json)}}"#).get().preprocess["image"])
    }

    @Test("the public signature is the raw form with the model's own dimensions; the 400's text states the contract")
    func rawSignature() throws {
        let nhwc = try InputContract(Self.contract(#"{"accepts":{"datatype":"UINT8","layout":"NHWC"},"to_layout":"NCHW"}"#), for: Self.nchw)
        #expect(nhwc.raw == TensorInfo(name: "image", elementType: .uint8, shape: [.variable(name: "batch"), .fixed(28), .fixed(32), .fixed(3)]))
        #expect(nhwc.text == "input 'image' takes UINT8 [N,28,32,3] raw pixels (NHWC)")
        let same = try InputContract(Self.contract(#"{"accepts":{"datatype":"UINT16","layout":"NCHW"}}"#), for: Self.nchw)
        #expect(same.raw.shape == Self.nchw.shape && same.text == "input 'image' takes UINT16 [N,3,28,32] raw pixels (NCHW)")
        let open = TensorInfo(name: "image", elementType: .float, shape: [.fixed(1), .variable(name: "h"), .variable(name: nil), .fixed(3)])
        let back = try InputContract(Self.contract(#"{"accepts":{"datatype":"UINT8","layout":"NCHW"},"to_layout":"NHWC","channel_order":"BGR"}"#), for: open)
        #expect(back.raw.shape == [.fixed(1), .fixed(3), .variable(name: "h"), .variable(name: nil)])
        #expect(back.text == "input 'image' takes UINT8 [1,3,H,W] raw pixels (NCHW)")
        let features = TensorInfo(name: "input", elementType: .float, shape: [.variable(name: nil), .fixed(64)])
        let nf = try InputContract(Self.contract(#"{"accepts":{"datatype":"UINT8","layout":"NF"},"scale":0.0625}"#), for: features)
        #expect(nf.text == "input 'input' takes UINT8 [N,64] raw values (NF)")
        let asIs = try InputContract(Self.contract(#"{"accepts":{"datatype":"INT16"}}"#), for: TensorInfo(name: "x", elementType: .float, shape: [.variable(name: nil), .variable(name: "T"), .fixed(2)]))
        #expect(asIs.text == "input 'x' takes INT16 [N,T,2] raw values")
    }

    @Test("a contract that does not fit the model fails naming the manifest key")
    func checkedAgainstTheModel() throws {
        let inputs = [Self.nchw, TensorInfo(name: "ids", elementType: .int64, shape: [.variable(name: nil), .fixed(4)]),
                      TensorInfo(name: "open", elementType: .float, shape: [.variable(name: nil), .variable(name: "C"), .fixed(8), .fixed(8)]),
                      TensorInfo(name: "gray", elementType: .float, shape: [.variable(name: nil), .fixed(1), .fixed(8), .fixed(8)])]
        func message(_ input: String, _ json: String) throws -> String {
            let preprocess = [input: try Self.contract(json)]
            do throws(RegistryError) { _ = try PreprocessServable.contracts(preprocess, inputs: inputs); return "fits" } catch { return error.message }
        }
        let image = #""accepts":{"datatype":"UINT8","layout":"NHWC"},"to_layout":"NCHW""#
        #expect(try message("image", "{\(image),\"mean\":[1,2,3],\"channel_order\":\"BGR\"}") == "fits")
        #expect(try message("picture", "{\(image)}") == "manifest key 'preprocess.picture': the model has no input 'picture' (inputs: image, ids, open, gray)")
        #expect(try message("ids", #"{"accepts":{"datatype":"UINT8"}}"#) == "manifest key 'preprocess.ids': input 'ids' is INT64; preprocessing makes FP32 inputs")
        #expect(try message("image", #"{"accepts":{"datatype":"UINT8","layout":"NF"}}"#) == "manifest key 'preprocess.image.accepts.layout': 'NF' needs an input of rank 2, input 'image' is [batch, 3, 28, 32]")
        #expect(try message("gray", #"{"accepts":{"datatype":"UINT8","layout":"NCHW"},"mean":0.5,"std":[0.25]}"#) == "fits")
        #expect(try message("image", "{\(image),\"mean\":[0.5]}") == "manifest key 'preprocess.image.mean': 1 value for 3 channels (input 'image' is [batch, 3, 28, 32], NCHW)")
        #expect(try message("gray", #"{"accepts":{"datatype":"UINT8","layout":"NCHW"},"std":[1,2,3]}"#) == "manifest key 'preprocess.gray.std': 3 values for 1 channel (input 'gray' is [?, 1, 8, 8], NCHW)")
        #expect(try message("open", #"{"accepts":{"datatype":"UINT8","layout":"NCHW"},"std":[1,2,3]}"#) == "manifest key 'preprocess.open.std': one value per channel needs a fixed channel dimension; input 'open' is [?, C, 8, 8]")
        #expect(try message("open", #"{"accepts":{"datatype":"UINT8","layout":"NCHW"},"std":2}"#) == "fits", "one value for every channel fits any channel count")
        #expect(try message("gray", #"{"accepts":{"datatype":"UINT8","layout":"NCHW"},"channel_order":"BGR"}"#) == "manifest key 'preprocess.gray.channel_order': 'BGR' reverses 3 channels; input 'gray' has 1 ([?, 1, 8, 8])")
        #expect(try message("image", #"{"accepts":{"datatype":"UINT8","layout":"NCHW"},"to_layout":"NHWC","channel_order":"BGR"}"#) == "manifest key 'preprocess.image.channel_order': 'BGR' reverses 3 channels; input 'image' has 32 ([batch, 3, 28, 32])",
                "to_layout NHWC reads the model's last dimension as its channels")
    }

    @Test("a raw tensor of the wrong datatype or shape is the client's error, stated as the contract")
    func refusesWhatDoesNotFit() throws {
        let contract = try InputContract(Self.contract(#"{"accepts":{"datatype":"UINT8","layout":"NHWC"},"to_layout":"NCHW"}"#), for: Self.nchw)
        func message(_ tensor: Tensor) -> RegistryError? {
            do throws(RegistryError) { _ = try contract.apply(tensor); return nil } catch { return error }
        }
        let float = try Tensor(shape: [1, 28, 32, 3], scalars: [Float](repeating: 0, count: 28 * 32 * 3))
        #expect(message(float)?.code == .invalidArgument)
        #expect(message(float)?.message == "input 'image' takes UINT8 [N,28,32,3] raw pixels (NHWC), got FP32 [1,28,32,3]")
        let transposed = try Tensor(shape: [1, 3, 28, 32], scalars: [UInt8](repeating: 0, count: 28 * 32 * 3))
        #expect(message(transposed)?.message == "input 'image' takes UINT8 [N,28,32,3] raw pixels (NHWC), got UINT8 [1,3,28,32]")
        let flat = try Tensor(shape: [28 * 32 * 3], scalars: [UInt8](repeating: 0, count: 28 * 32 * 3))
        #expect(message(flat)?.message.hasSuffix("got UINT8 [2688]") == true)
        let empty = try contract.apply(Tensor(shape: [0, 28, 32, 3], scalars: [UInt8]()))
        #expect(empty.shape == [0, 3, 28, 32] && empty.elementType == .float, "an empty batch is an empty batch")
    }

    @Test("the formula, element by element: cast, times scale, minus mean[c], over std[c], channels reversed after normalising, then laid out")
    func formula() throws {
        // One 1×2 image of 3 channels in NHWC: pixel 0 is (10, 20, 30), pixel 1 (40, 50, 60).
        let contract = try InputContract(Self.contract(#"{"accepts":{"datatype":"UINT8","layout":"NHWC"},"to_layout":"NCHW","scale":0.5,"mean":[1,2,3],"std":[2,4,8],"channel_order":"BGR"}"#),
                                         for: TensorInfo(name: "image", elementType: .float, shape: [.variable(name: nil), .fixed(3), .fixed(1), .fixed(2)]))
        let out = try contract.apply(Tensor(shape: [1, 1, 2, 3], scalars: [UInt8(10), 20, 30, 40, 50, 60]))
        #expect(out.shape == [1, 3, 1, 2])
        // Client channel c normalised by mean[c] and std[c], then written to model channel 2 - c.
        let r: [Float] = [(5 - 1) / 2, (20 - 1) / 2], g: [Float] = [(10 - 2) / 4, (25 - 2) / 4], b: [Float] = [(15 - 3) / 8, (30 - 3) / 8]
        #expect(try out.scalars(as: Float.self) == b + g + r)
    }
}
