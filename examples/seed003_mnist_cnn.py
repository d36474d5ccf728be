"""Seed 003 §5.2: the Keras MNIST CNN (5 epochs, validated on the test set), run on shenjing.

Run from the repository root:
    SHENJING_DATA=../shared/data python examples/seed003_mnist_cnn.py

Lines that differ from the seed, and why:
- `import tensorflow as tf`     -> `import shenjing as tf`   (import; unused, as in the seed)
- `from tensorflow import keras` -> `from shenjing import keras` (import)
- added, at the end: `model.evaluate(...)` and a print of the test accuracy, because the
  seed claims "over 98% on the test set after 5 epochs" but never prints it.
Everything else is the seed's code, unchanged.
"""

import shenjing as tf  # noqa: F401
from shenjing import keras

# 构建模型
model = keras.Sequential([
    keras.layers.Conv2D(32, (3, 3), activation='relu', input_shape=(28, 28, 1)),
    keras.layers.MaxPooling2D((2, 2)),
    keras.layers.Flatten(),
    keras.layers.Dense(128, activation='relu'),
    keras.layers.Dense(10, activation='softmax')
])

# 编译模型
model.compile(optimizer='adam',
              loss='sparse_categorical_crossentropy',
              metrics=['accuracy'])

# 加载数据集
mnist = keras.datasets.mnist
(train_images, train_labels), (test_images, test_labels) = mnist.load_data()

# 数据预处理
train_images = train_images.reshape((60000, 28, 28, 1))
train_images = train_images / 255.0
test_images = test_images.reshape((10000, 28, 28, 1))
test_images = test_images / 255.0

# 训练模型
model.fit(train_images, train_labels, epochs=5, validation_data=(test_images, test_labels))

test_loss, test_acc = model.evaluate(test_images, test_labels, verbose=0)
print(f"Test accuracy: {test_acc:.4f}")
