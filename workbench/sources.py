"""Where the official files come from, and their published SHA-256 digests.

MNIST (LeCun et al., the IDX files as mirrored by PyTorch's S3 bucket), CIFAR-10's binary version
(Krizhevsky 2009, the author's page) and the trained models the DeepXplore and DeepFault
authors released with their code (their public repositories at fixed commits). The digests are
those TFDS and Keras publish for the datasets and those of the committed files for the models.
"""

__all__ = [
    "CIFAR_ARCHIVE",
    "CIFAR_SHA256",
    "CIFAR_URL",
    "MNIST_CONTENT",
    "MNIST_FILES",
    "MNIST_URL",
    "RELEASED_FILES",
    "RELEASED_SOURCES",
]

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
# SHA-256 of the official downloads (the same digests TFDS and Keras publish).
MNIST_FILES = {
    "train-images-idx3-ubyte": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
CIFAR_ARCHIVE = "cifar-10-binary.tar.gz"
CIFAR_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
MNIST_CONTENT = {  # SHA-256 of the decompressed IDX files: a copy gzipped anew passes too
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

# The trained MNIST models the DeepXplore and DeepFault authors published with their code, from
# their public repositories at fixed commits (raw.githubusercontent.com serves the committed
# files as they are), with the SHA-256 of each file as published.
RELEASED_SOURCES = {
    # Pei et al., DeepXplore (SOSP 2017): peikexin9/deepxplore, folder MNIST/, MIT licence.
    "deepxplore": "https://raw.githubusercontent.com/peikexin9/deepxplore/7ab6a02/MNIST/",
    # Eniser et al., DeepFault (FASE 2019): hfeniser/DeepFault, folder neural_networks/, GPL-3.0.
    "deepfault": "https://raw.githubusercontent.com/hfeniser/DeepFault/7a068e7/neural_networks/",
}
RELEASED_FILES = {  # path under <root>/released/ -> SHA-256
    "deepxplore/Model1.h5":
        "ad24a291b3b44942b67acedbe85bf6938917d45fda51aef9519ff5143ff08144",
    "deepxplore/Model2.h5":
        "e858a1f9e428162ab60584f594b76e3fc2b9853d04bccccb5f6b1332ed9f819c",
    "deepxplore/Model3.h5":
        "3c6f7589d67d7189faf036e8edd7af2eee5b68b0247f98a5cf766577590c32ce",
    "deepfault/mnist_test_model_3_50_leaky_relu.h5":
        "a43972583d23e527d1bea08dff4272fde905ed059ad6b86467812880642e0cc9",
    "deepfault/mnist_test_model_3_50_leaky_relu.json":
        "b3c9cd2b6f62d7bf9f0201d3b82955de832cbc5a5d1d68a39d4b4b8e155cf473",
    "deepfault/mnist_test_model_3_50_relu.h5":
        "09a36a4bbf369cd9ce409583eaca6a891a05e08d2e0d6ef5a116a69f819beae9",
    "deepfault/mnist_test_model_3_50_relu.json":
        "4dbdd0c76585e99c48b4bff67a0ad67d298ecd5a0c991e4556a0fe74e5e8d0a7",
    "deepfault/mnist_test_model_5_30_leaky_relu.h5":
        "2814e9a6f37b96fb9e85847428170396c914ae8b61e7119bcb147a55a47d11cc",
    "deepfault/mnist_test_model_5_30_leaky_relu.json":
        "417b05d587632b2033b932e9faba203b5af058c9600c89c96d29522debc579cb",
    "deepfault/mnist_test_model_5_30_relu.h5":
        "2fd0a2a6a702faf678988b3beeac5c96c48f7199cc78a68591badd60e127af35",
    "deepfault/mnist_test_model_5_30_relu.json":
        "54b92234f16312666deb04373fdccaa3b9c825c5eae0e5eda6d77f00f5a84ff3",
    "deepfault/mnist_test_model_6_25_leaky_relu.h5":
        "036b54e944d4f23c64f9cc23b54e4c33b842760dbb211a1cbbb5bdf37e00e1d0",
    "deepfault/mnist_test_model_6_25_leaky_relu.json":
        "88a318477e3a896fee98a513533cbbdb3bc0ae875191cff8d6d4f6001cdd7857",
    "deepfault/mnist_test_model_8_20_leaky_relu.h5":
        "3ed22f6f22b53e2cf80331700ff0b6baef37889c1c4a91b3bd757e7426223180",
    "deepfault/mnist_test_model_8_20_leaky_relu.json":
        "e8065e805b6733ec1591e64a98657c9061d1a3322a1460ad2314995ebfc9bcdf",
    "deepfault/mnist_test_model_8_20_relu.h5":
        "95a7cb9653ee11cae87ba771afbecbad17c0723f57c04403e272447daf8c3b14",
    "deepfault/mnist_test_model_8_20_relu.json":
        "c197b6ccc4dbdfa7763eacd18babd148dc260c014414a0dfc3b33ec87597d0aa",
}
