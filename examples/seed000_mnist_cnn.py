"""Seed 000 §3.4: the Keras MNIST CNN, run on shenjing.

Run from the repository root:
    SHENJING_DATA=../shared/data MPLBACKEND=Agg python examples/seed000_mnist_cnn.py

Lines that differ from the seed, and why:
- `from tensorflow import keras`             -> `from shenjing import keras`            (import)
- `from tensorflow.keras import layers`      -> `from shenjing.keras import layers`     (import)
- `from sklearn.model_selection import train_test_split`
                                             -> `from shenjing.data.preprocessing import train_test_split`
                                                (import; the seed imports it and never uses it)
- added `plt.savefig("seed000_curves.png")` before `plt.show()`, so the curves survive a
  run without a screen (data path: SHENJING_DATA points the loader at the MNIST files).
Everything else is the seed's code, unchanged.
"""

import numpy as np
from shenjing import keras
from shenjing.keras import layers
from shenjing.data.preprocessing import train_test_split  # noqa: F401  (as in the seed)
from matplotlib import pyplot as plt

(x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()

num_classes = len(np.unique(y_train)) # 类别数
input_shape = (28, 28, 1)   # 输入的图像尺寸
x_train = x_train.astype('float32') / 255.0    # 归一化至0~1之间
x_test = x_test.astype('float32') / 255.0
x_train = np.expand_dims(x_train, axis=-1)     # 给输入增加一个维度
x_test = np.expand_dims(x_test, axis=-1)
y_train = keras.utils.to_categorical(y_train, num_classes)   # 将标签转换为one-hot编码
y_test = keras.utils.to_categorical(y_test, num_classes)

model = keras.Sequential([
    layers.Conv2D(32, kernel_size=(3, 3), activation='relu', input_shape=input_shape),
    layers.MaxPooling2D((2, 2)),
    layers.Conv2D(64, (3, 3), activation='relu'),
    layers.MaxPooling2D((2, 2)),
    layers.Flatten(),
    layers.Dense(num_classes, activation='softmax')
])

model.compile(loss='categorical_crossentropy', optimizer='adam', metrics=['accuracy'])

history = model.fit(x_train, y_train, batch_size=128, epochs=10, validation_split=0.1)

model.save('mnist_cnn.h5')

plt.figure(figsize=(12, 4))
plt.subplot(1, 2, 1)
plt.title("Accuracy")
plt.plot(history.history["accuracy"], label="Train", c="#FFA500")
if "val_accuracy" in history.history:
    plt.plot(history.history["val_accuracy"], label="Test", c="#00CED1")
plt.legend()

plt.subplot(1, 2, 2)
plt.title("Loss")
plt.plot(history.history["loss"], label="Train", c="#FFA500")
if "val_loss" in history.history:
    plt.plot(history.history["val_loss"], label="Test", c="#00CED1")
plt.legend()
plt.savefig("seed000_curves.png")
plt.show()

score = model.evaluate(x_test, y_test, verbose=0)
print('Test loss:', score[0])
print('Test accuracy:', score[1])
