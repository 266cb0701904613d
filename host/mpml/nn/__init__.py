"""mpml.nn: a small numpy neural-network library for training models the board can run.

Layers (channels last; 1-D signals are [batch, length, channels]): Dense,
Conv1D, DepthwiseConv1D, separable_conv1d (depthwise + pointwise), MaxPool1D,
AvgPool1D, GlobalAvgPool1D, Flatten, Softmax; fused activations 'none',
'relu', 'relu6'. `Sequential` trains them with Adam on mini-batches
(cross-entropy with class weights, or MSE; L2; early stopping on validation
that restores the best weights; a progress line on stderr) and saves/loads a
float model as `.npz`. `mpml.quantize` turns a trained model into an int8
`Graph`. See docs/training-and-quantization.md.
"""

from .layers import (ACTIVATIONS, AvgPool1D, Conv1D, Dense, DepthwiseConv1D, Flatten, GlobalAvgPool1D, Layer,
                     MaxPool1D, Softmax, separable_conv1d)
from .model import FORMAT, Adam, History, Sequential, class_weights
from .models import anomaly_scores, cnn1d_classifier, dense_autoencoder, mlp_classifier

load = Sequential.load

__all__ = [
    "ACTIVATIONS", "Layer", "Dense", "Conv1D", "DepthwiseConv1D", "separable_conv1d", "MaxPool1D", "AvgPool1D",
    "GlobalAvgPool1D", "Flatten", "Softmax", "Sequential", "History", "Adam", "class_weights", "FORMAT",
    "mlp_classifier", "cnn1d_classifier", "dense_autoencoder", "anomaly_scores", "load",
]
